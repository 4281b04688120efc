import { describe, expect, it } from 'vitest';
import { baseUrlOf, regionOfUrl, resolveApiTarget } from '../../local/cli/api-client.js';

const credentials = () => ({ accessKeyId: 'AKIDTEST', secretAccessKey: 'secret' });
const deployed = 'https://abc123.execute-api.eu-west-1.amazonaws.com/prod/';

describe('resolveApiTarget', () => {
  it('signs with IAM, in the URL region, for an execute-api URL', () => {
    const target = resolveApiTarget({ api: deployed }, {}, credentials);

    expect(target.baseUrl).toBe('https://abc123.execute-api.eu-west-1.amazonaws.com/prod');
    expect(target.auth).toMatchObject({ mode: 'iam', region: 'eu-west-1' });
  });

  it('takes the region from AWS_REGION when the URL has none', () => {
    const target = resolveApiTarget(
      { api: 'https://api.example.com', auth: 'iam' },
      { AWS_REGION: 'us-east-2' },
      credentials,
    );

    expect(target.auth).toMatchObject({ mode: 'iam', region: 'us-east-2' });
  });

  it('refuses IAM without a region, naming AWS_REGION', () => {
    expect(() => resolveApiTarget({ api: 'https://api.example.com', auth: 'iam' }, {}, credentials)).toThrow(
      /AWS_REGION/,
    );
  });

  it('sends the SD35_API_TOKEN as a bearer token', () => {
    expect(resolveApiTarget({}, { SD35_API_TOKEN: 'tok' }).auth).toEqual({ mode: 'bearer', token: 'tok' });
  });

  it('still reads the token from API_TOKEN', () => {
    expect(resolveApiTarget({}, { API_TOKEN: 'old' }).auth).toEqual({ mode: 'bearer', token: 'old' });
  });

  it('takes the mode from SD35_AUTH', () => {
    expect(resolveApiTarget({}, { SD35_AUTH: 'none', API_TOKEN: 'tok' }).auth).toEqual({ mode: 'none' });
  });

  it('lets --auth win over SD35_AUTH', () => {
    expect(resolveApiTarget({ auth: 'bearer' }, { SD35_AUTH: 'none', API_TOKEN: 'tok' }).auth.mode).toBe(
      'bearer',
    );
  });

  it('refuses an unknown mode, naming the flag and the choices', () => {
    expect(() => resolveApiTarget({ auth: 'basic' }, {})).toThrow(
      '--auth: must be one of iam, bearer, none, got "basic"',
    );
  });

  it('refuses bearer auth without a token', () => {
    expect(() => resolveApiTarget({ auth: 'bearer' }, {})).toThrow(/SD35_API_TOKEN/);
  });

  it('takes the URL from SD35_API_URL, else the local server', () => {
    expect(resolveApiTarget({}, { SD35_API_URL: 'http://127.0.0.1:4000/' }).baseUrl).toBe(
      'http://127.0.0.1:4000',
    );
    expect(resolveApiTarget({}, {}).baseUrl).toBe('http://127.0.0.1:3000');
  });

  it('refuses a URL that is not http(s)', () => {
    expect(() => resolveApiTarget({ api: 'ftp://x' }, {})).toThrow('--api: must be an http or https URL');
  });
});

describe('errors name the setting the user set: the flag, or the variable', () => {
  it.each([
    [{ api: 'notaurl' }, {}, '--api: "notaurl" is not a URL'],
    [{}, { SD35_API_URL: 'notaurl' }, 'SD35_API_URL: "notaurl" is not a URL'],
    [{}, { SD35_API_URL: 'ftp://x' }, 'SD35_API_URL: must be an http or https URL, got "ftp://x"'],
    [{ auth: 'basic' }, {}, '--auth: must be one of iam, bearer, none, got "basic"'],
    [{}, { SD35_AUTH: 'basic' }, 'SD35_AUTH: must be one of iam, bearer, none, got "basic"'],
    [{ auth: 'bearer' }, {}, '--auth bearer: set the token in SD35_API_TOKEN (or API_TOKEN)'],
    [{}, { SD35_AUTH: 'bearer' }, 'SD35_AUTH=bearer: set the token in SD35_API_TOKEN (or API_TOKEN)'],
    [{ api: 'https://api.example.com', auth: 'iam' }, {}, '--auth iam: no region in api.example.com'],
    [{ api: 'https://api.example.com' }, { SD35_AUTH: 'iam' }, 'SD35_AUTH=iam: no region in api.example.com'],
    [
      {},
      { SD35_API_URL: 'https://api.amazonaws.com' },
      'SD35_API_URL: api.amazonaws.com is an AWS host, so auth is iam, and it names no region; set AWS_REGION',
    ],
  ] as const)('%j with %j: %s', (flags, env, message) => {
    expect(() => resolveApiTarget(flags, env, credentials)).toThrow(message);
  });

  it('names the flag when both are set: the flag wins', () => {
    expect(() => resolveApiTarget({ api: 'nope' }, { SD35_API_URL: 'alsonot' })).toThrow(
      '--api: "nope" is not a URL',
    );
  });

  it('names the variable in baseUrlOf too (sd35 open)', () => {
    expect(() => baseUrlOf(undefined, { SD35_API_URL: 'notaurl' })).toThrow(
      'SD35_API_URL: "notaurl" is not a URL',
    );
  });
});

describe('regionOfUrl', () => {
  it('reads the region of a China-partition host too', () => {
    expect(regionOfUrl('x.execute-api.cn-north-1.amazonaws.com.cn')).toBe('cn-north-1');
  });
});
