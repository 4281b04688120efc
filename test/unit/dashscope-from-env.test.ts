import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../functions/shared/config.js';
import { dashscopeFromConfig } from '../../functions/shared/dashscope-from-env.js';
import { DashScopeTimeoutError } from '../../functions/shared/errors.js';
import { submitSpec } from '../../functions/submit/spec.js';

const KEY_ENV = { DASHSCOPE_API_KEY: 'sk-env-test' };

/** A fetch that never answers: it only rejects when the caller's signal aborts. */
const silentFetch = ((_url: string, init: RequestInit) =>
  new Promise((_, reject) => {
    init.signal?.addEventListener('abort', () => reject(init.signal?.reason), { once: true });
  })) as unknown as typeof fetch;

const rejectionOf = (promise: Promise<unknown>) =>
  promise.then(
    () => undefined,
    (error: unknown) => error,
  );

describe('the DashScope client from configuration', () => {
  it('reads the submit timeout from DASHSCOPE_SUBMIT_TIMEOUT_MS, apart from the query timeout', async () => {
    // Prepare
    const config = submitSpec.parse({
      ...KEY_ENV,
      DASHSCOPE_TIMEOUT_MS: '20',
      DASHSCOPE_SUBMIT_TIMEOUT_MS: '60',
    });
    const client = dashscopeFromConfig(config, silentFetch);

    // Act
    const submit = await rejectionOf(
      client.submit({
        model: 'stable-diffusion-3.5-large',
        input: { prompt: 'x' },
        parameters: { size: '512*512', n: 1, steps: 40, cfg: 4.5, shift: 3 },
      }),
    );
    const query = await rejectionOf(client.getTask('task-1'));

    // Assess
    expect(config.DASHSCOPE_SUBMIT_TIMEOUT_MS).toBe(60);
    expect(submit).toBeInstanceOf(DashScopeTimeoutError);
    expect((submit as Error).message).toContain('no answer within 60 ms');
    expect((query as Error).message).toContain('no answer within 20 ms');
  });

  it('leaves the submit timeout to the client when the variable is unset', () => {
    // Act
    const config = submitSpec.parse(KEY_ENV);

    // Assess
    expect(config).not.toHaveProperty('DASHSCOPE_SUBMIT_TIMEOUT_MS');
  });

  it('names DASHSCOPE_SUBMIT_TIMEOUT_MS when it is not a positive integer', () => {
    // Act
    const act = () => submitSpec.parse({ ...KEY_ENV, DASHSCOPE_SUBMIT_TIMEOUT_MS: 'soon' });

    // Assess
    expect(act).toThrow(ConfigError);
    expect(act).toThrow(/DASHSCOPE_SUBMIT_TIMEOUT_MS/);
  });
});
