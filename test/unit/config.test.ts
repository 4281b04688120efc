import { describe, expect, it } from 'vitest';
import { persistSpec } from '../../functions/persist/spec.js';
import { pollSpec } from '../../functions/poll/spec.js';
import {
  ConfigError,
  DEFAULT_DEADLINE_SECONDS,
  DEFAULT_MAX_IMAGE_BYTES,
} from '../../functions/shared/config.js';
import { DEFAULT_DASHSCOPE_BASE_URL } from '../../functions/shared/dashscope/client.js';
import { DOWNLOAD_BUDGET } from '../../functions/shared/download-budget.js';
import { DEFAULT_RUN_TIME_MODEL } from '../../functions/shared/run-time-estimate.js';
import { submitSpec } from '../../functions/submit/spec.js';

const KEY_ENV = { DASHSCOPE_API_KEY: 'sk-config-test' };
const PERSIST_ENV = { ...KEY_ENV, BUCKET_NAME: 'sd35-images' };

function errorOf(act: () => unknown): Error {
  try {
    act();
  } catch (error) {
    if (error instanceof Error) return error;
    throw new Error(`expected an Error, got ${String(error)}`);
  }
  throw new Error('expected loadConfig to throw');
}

describe('loadConfig: defaults', () => {
  it('applies the DashScope defaults and the submit deadline', () => {
    // Act
    const config = submitSpec.parse(KEY_ENV);

    // Assess
    expect(config).toEqual({
      DASHSCOPE_BASE_URL: DEFAULT_DASHSCOPE_BASE_URL,
      DASHSCOPE_API_KEY: 'sk-config-test',
      DASHSCOPE_TIMEOUT_MS: 10_000,
      DEADLINE_SECONDS: DEFAULT_DEADLINE_SECONDS,
      RUN_TIME_MODEL: DEFAULT_RUN_TIME_MODEL,
    });
  });

  it('reads run-time model overrides for submit from RUN_TIME_MODEL', () => {
    // Act
    const config = submitSpec.parse({
      ...KEY_ENV,
      RUN_TIME_MODEL: '{"spread":0.3,"secondsPerMegapixelStep":{"stable-diffusion-3.5-large":0.2}}',
    });

    // Assess
    expect(config.RUN_TIME_MODEL).toEqual({
      ...DEFAULT_RUN_TIME_MODEL,
      spread: 0.3,
      secondsPerMegapixelStep: {
        ...DEFAULT_RUN_TIME_MODEL.secondsPerMegapixelStep,
        'stable-diffusion-3.5-large': 0.2,
      },
    });
  });

  it.each([
    ['not JSON', 'must be JSON'],
    ['{"spread": -1}', 'spread'],
    ['{"steps": 3}', 'steps'],
  ])('names RUN_TIME_MODEL when it is %s', (value, detail) => {
    // Act
    const act = () => submitSpec.parse({ ...KEY_ENV, RUN_TIME_MODEL: value });

    // Assess
    expect(act).toThrow(/RUN_TIME_MODEL/);
    expect(act).toThrow(new RegExp(detail));
  });

  it('applies the DashScope defaults for poll', () => {
    // Act
    const config = pollSpec.parse(KEY_ENV);

    // Assess
    expect(config).toEqual({
      DASHSCOPE_BASE_URL: 'https://dashscope.aliyuncs.com/api/v1',
      DASHSCOPE_API_KEY: 'sk-config-test',
      DASHSCOPE_TIMEOUT_MS: 10_000,
    });
  });

  it('applies the persist defaults', () => {
    // Act
    const config = persistSpec.parse(PERSIST_ENV);

    // Assess
    expect(config).toMatchObject({
      BUCKET_NAME: 'sd35-images',
      RESULT_HOSTS: ['*.aliyuncs.com'],
      MAX_IMAGE_BYTES: DEFAULT_MAX_IMAGE_BYTES,
      DOWNLOAD_TIMEOUT_MS: DOWNLOAD_BUDGET.timeoutMs,
      DOWNLOAD_MIN_BYTES_PER_SECOND: DOWNLOAD_BUDGET.minBytesPerSecond,
      DOWNLOAD_STALL_WINDOW_MS: DOWNLOAD_BUDGET.stallWindowMs,
    });
  });

  it('leaves out variables it does not know', () => {
    // Act
    const config = pollSpec.parse({ ...KEY_ENV, PATH: '/usr/bin', AWS_REGION: 'eu-west-1' });

    // Assess
    expect(config).not.toHaveProperty('PATH');
    expect(config).not.toHaveProperty('AWS_REGION');
  });

  it('reads numbers from their strings', () => {
    // Act
    const config = submitSpec.parse({
      ...KEY_ENV,
      DASHSCOPE_TIMEOUT_MS: '2500',
      DEADLINE_SECONDS: '900',
    });

    // Assess
    expect(config).toMatchObject({ DASHSCOPE_TIMEOUT_MS: 2500, DEADLINE_SECONDS: 900 });
  });
});

describe('loadConfig: missing or bad variables', () => {
  it('names BUCKET_NAME when persist has none', () => {
    // Act
    const error = errorOf(() => persistSpec.parse(KEY_ENV));

    // Assess
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toContain('BUCKET_NAME');
  });

  it('treats a blank BUCKET_NAME as missing', () => {
    // Act
    const error = errorOf(() => persistSpec.parse({ ...KEY_ENV, BUCKET_NAME: '' }));

    // Assess
    expect(error.message).toContain('BUCKET_NAME');
  });

  it('names both key variables when neither is set', () => {
    // Act
    const error = errorOf(() => submitSpec.parse({}));

    // Assess
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toContain('DASHSCOPE_API_KEY_SECRET_ID');
    expect(error.message).toMatch(/DASHSCOPE_API_KEY\b/);
  });

  it('treats blank key variables as unset', () => {
    // Act
    const error = errorOf(() => pollSpec.parse({ DASHSCOPE_API_KEY: '', DASHSCOPE_API_KEY_SECRET_ID: '' }));

    // Assess
    expect(error.message).toContain('DASHSCOPE_API_KEY_SECRET_ID');
  });

  it('accepts a secret id instead of a key', () => {
    // Act
    const config = pollSpec.parse({ DASHSCOPE_API_KEY_SECRET_ID: 'sd35/dashscope-api-key' });

    // Assess
    expect(config.DASHSCOPE_API_KEY_SECRET_ID).toBe('sd35/dashscope-api-key');
  });

  it('names a malformed number', () => {
    // Act
    const error = errorOf(() => pollSpec.parse({ ...KEY_ENV, DASHSCOPE_TIMEOUT_MS: 'ten seconds' }));

    // Assess
    expect(error.message).toContain('DASHSCOPE_TIMEOUT_MS');
  });

  it('never puts the API key in its message', () => {
    // Act
    const error = errorOf(() => persistSpec.parse({ ...KEY_ENV, MAX_IMAGE_BYTES: '-1' }));

    // Assess
    expect(error.message).not.toContain('sk-config-test');
  });
});

describe('loadConfig: RESULT_HOSTS', () => {
  it('parses a comma list, trimming spaces and dropping empty items', () => {
    // Act
    const config = persistSpec.parse({
      ...PERSIST_ENV,
      RESULT_HOSTS: ' dashscope-result-bj.oss-cn-beijing.aliyuncs.com, *.aliyuncs.com ,,localhost',
    });

    // Assess
    expect(config.RESULT_HOSTS).toEqual([
      'dashscope-result-bj.oss-cn-beijing.aliyuncs.com',
      '*.aliyuncs.com',
      'localhost',
    ]);
  });

  it.each([
    ['a URL', 'https://evil.example.com'],
    ['a host with a path', 'evil.example.com/images'],
    ['a bare wildcard', '*'],
    ['a wildcard in the middle', 'dashscope-*.aliyuncs.com'],
    ['a host with a port', 'localhost:9000'],
    ['one bad host among good ones', '*.aliyuncs.com, user@evil.example.com'],
    ['only commas', ' , ,'],
  ])('rejects %s and names RESULT_HOSTS', (_label, RESULT_HOSTS) => {
    // Act
    const error = errorOf(() => persistSpec.parse({ ...PERSIST_ENV, RESULT_HOSTS }));

    // Assess
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toContain('RESULT_HOSTS');
  });
});

describe('loadConfig: DASHSCOPE_BASE_URL', () => {
  it('refuses plain http to a remote host, where the key would travel unencrypted', () => {
    expect(() =>
      pollSpec.parse({
        DASHSCOPE_API_KEY: 'k',
        DASHSCOPE_BASE_URL: 'http://dashscope.aliyuncs.com/api/v1',
      }),
    ).toThrow(/DASHSCOPE_BASE_URL: must be an https URL/);
  });

  it('accepts http on loopback, for the local emulator', () => {
    const config = pollSpec.parse({
      DASHSCOPE_API_KEY: 'k',
      DASHSCOPE_BASE_URL: 'http://127.0.0.1:4010/api/v1',
    });
    expect(config.DASHSCOPE_BASE_URL).toBe('http://127.0.0.1:4010/api/v1');
  });

  it('refuses a wildcard over a whole top-level domain in RESULT_HOSTS', () => {
    expect(() =>
      persistSpec.parse({ DASHSCOPE_API_KEY: 'k', BUCKET_NAME: 'bucket', RESULT_HOSTS: '*.com' }),
    ).toThrow(/RESULT_HOSTS/);
  });
});
