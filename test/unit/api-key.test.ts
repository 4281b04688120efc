import { describe, expect, it } from 'vitest';
import { pollSpec } from '../../functions/poll/spec.js';
import { apiKeyProvider, type SecretReader } from '../../functions/shared/api-key.js';

const SECRET_ID = 'sd35/dashscope-api-key';
const secretConfig = pollSpec.parse({ DASHSCOPE_API_KEY_SECRET_ID: SECRET_ID });

/** A fake Secrets Manager: answers with the next of `values` and counts reads. */
function fakeSecrets(...values: Array<string | undefined | Error>) {
  const reads: string[] = [];
  const readSecret: SecretReader = async (secretId) => {
    reads.push(secretId);
    const value = values[Math.min(reads.length, values.length) - 1];
    if (value instanceof Error) throw value;
    return value;
  };
  return { reads, readSecret };
}

/** A clock the test moves by hand. */
function manualClock(start = 0) {
  let time = start;
  return { now: () => time, advance: (ms: number) => (time += ms) };
}

describe('apiKeyProvider: from Secrets Manager', () => {
  it('reads the configured secret and trims the key', async () => {
    // Prepare
    const secrets = fakeSecrets('  sk-from-secret\n');

    // Act
    const key = await apiKeyProvider(secretConfig, { readSecret: secrets.readSecret })();

    // Assess
    expect(key).toBe('sk-from-secret');
    expect(secrets.reads).toEqual([SECRET_ID]);
  });

  it('keeps the key for 5 minutes, then reads the secret again', async () => {
    // Prepare
    const secrets = fakeSecrets('sk-old', 'sk-rotated');
    const clock = manualClock();
    const apiKey = apiKeyProvider(secretConfig, { readSecret: secrets.readSecret, now: clock.now });

    // Act
    const first = await apiKey();
    clock.advance(299_999);
    const cached = await apiKey();
    clock.advance(1);
    const fresh = await apiKey();

    // Assess
    expect([first, cached, fresh]).toEqual(['sk-old', 'sk-old', 'sk-rotated']);
    expect(secrets.reads).toHaveLength(2);
  });

  it('shares one read between concurrent calls', async () => {
    // Prepare
    const secrets = fakeSecrets('sk-shared');
    const apiKey = apiKeyProvider(secretConfig, { readSecret: secrets.readSecret });

    // Act
    const keys = await Promise.all([apiKey(), apiKey(), apiKey()]);

    // Assess
    expect(keys).toEqual(['sk-shared', 'sk-shared', 'sk-shared']);
    expect(secrets.reads).toHaveLength(1);
  });

  it('does not keep a failed read, and names the secret in the error', async () => {
    // Prepare
    const denied = Object.assign(new Error('not authorized to perform secretsmanager:GetSecretValue'), {
      name: 'AccessDeniedException',
    });
    const secrets = fakeSecrets(denied, 'sk-after-fix');
    const apiKey = apiKeyProvider(secretConfig, { readSecret: secrets.readSecret });

    // Act
    const failure = apiKey();

    // Assess
    await expect(failure).rejects.toThrow(`Could not read secret ${SECRET_ID}: AccessDeniedException`);
    await expect(apiKey()).resolves.toBe('sk-after-fix');
  });

  it.each([
    ['a binary secret', undefined],
    ['an empty secret', '   '],
  ])('refuses %s, naming the secret but no value', async (_, value) => {
    // Prepare
    const apiKey = apiKeyProvider(secretConfig, { readSecret: fakeSecrets(value).readSecret });

    // Act
    const act = apiKey();

    // Assess
    await expect(act).rejects.toThrow(`Secret ${SECRET_ID} holds no DashScope API key`);
  });
});

describe('apiKeyProvider: from the environment', () => {
  it('returns DASHSCOPE_API_KEY without reading any secret', async () => {
    // Prepare
    const secrets = fakeSecrets('sk-from-secret');
    const config = pollSpec.parse({ DASHSCOPE_API_KEY: 'sk-local' });

    // Act
    const key = await apiKeyProvider(config, { readSecret: secrets.readSecret })();

    // Assess
    expect(key).toBe('sk-local');
    expect(secrets.reads).toEqual([]);
  });
});
