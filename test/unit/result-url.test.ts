import { describe, expect, it } from 'vitest';
import { checkResultUrl, type ResultUrlPolicy } from '../../functions/persist/result-url.js';

const ALIYUN: ResultUrlPolicy = { hosts: ['*.aliyuncs.com'] };
const RESULT_URL =
  'https://dashscope-result-bj.oss-cn-beijing.aliyuncs.com/1d/ab/20240614/c3b0/86ecf553.png?Expires=1718433044&OSSAccessKeyId=LTAI&Signature=abc%3D';

function reasonOf(result: ReturnType<typeof checkResultUrl>): string | undefined {
  return 'reason' in result ? result.reason : undefined;
}

describe('checkResultUrl: the wildcard family', () => {
  it('accepts an https URL on a subdomain of aliyuncs.com', () => {
    // Act
    const result = checkResultUrl(RESULT_URL, ALIYUN);

    // Assess
    expect(reasonOf(result)).toBeUndefined();
  });

  it('returns the URL parsed, query included', () => {
    // Act
    const result = checkResultUrl(RESULT_URL, ALIYUN);

    // Assess
    expect('url' in result && result.url.searchParams.get('Expires')).toBe('1718433044');
  });

  it.each([
    'https://dashscope-result-wlcb.oss-cn-wulanchabu.aliyuncs.com/x.png',
    'https://dashscope-result-sh.oss-cn-shanghai.aliyuncs.com/x.png',
    'https://DASHSCOPE-RESULT-BJ.OSS-CN-BEIJING.ALIYUNCS.COM/x.png',
  ])('accepts the regional host of %s', (url) => {
    // Act
    const result = checkResultUrl(url, ALIYUN);

    // Assess
    expect(reasonOf(result)).toBeUndefined();
  });

  it('refuses the apex aliyuncs.com for *.aliyuncs.com', () => {
    // Act
    const result = checkResultUrl('https://aliyuncs.com/x.png', ALIYUN);

    // Assess
    expect(reasonOf(result)).toContain('allow-list');
  });

  it('refuses a host that merely ends in the same letters (evilaliyuncs.com)', () => {
    // Act
    const result = checkResultUrl('https://evilaliyuncs.com/x.png', ALIYUN);

    // Assess
    expect(reasonOf(result)).toContain('allow-list');
  });

  it('refuses a host that puts aliyuncs.com in front of another domain', () => {
    // Act
    const result = checkResultUrl('https://dashscope-result-bj.aliyuncs.com.evil.example/x.png', ALIYUN);

    // Assess
    expect(reasonOf(result)).toContain('allow-list');
  });
});

describe('checkResultUrl: scheme and credentials', () => {
  it('refuses http by default', () => {
    // Act
    const result = checkResultUrl(RESULT_URL.replace('https:', 'http:'), ALIYUN);

    // Assess
    expect(reasonOf(result)).toContain('http:');
  });

  it('accepts http when allowHttp is set', () => {
    // Act
    const result = checkResultUrl('http://localhost:9000/x.png', { hosts: ['localhost'], allowHttp: true });

    // Assess
    expect(reasonOf(result)).toBeUndefined();
  });

  it.each(['ftp://dashscope-result-bj.oss-cn-beijing.aliyuncs.com/x.png', 'file:///etc/passwd'])(
    'refuses %s even with allowHttp',
    (url) => {
      // Act
      const result = checkResultUrl(url, { ...ALIYUN, allowHttp: true });

      // Assess
      expect(reasonOf(result)).toContain('not allowed');
    },
  );

  it.each([
    'https://user:secret@dashscope-result-bj.oss-cn-beijing.aliyuncs.com/x.png',
    'https://user@dashscope-result-bj.oss-cn-beijing.aliyuncs.com/x.png',
  ])('refuses credentials in %s', (url) => {
    // Act
    const result = checkResultUrl(url, ALIYUN);

    // Assess
    expect(reasonOf(result)).toContain('credentials');
  });

  it('refuses a URL that does not parse', () => {
    // Act
    const result = checkResultUrl('example_url_1', ALIYUN);

    // Assess
    expect(reasonOf(result)).toContain('not a valid URL');
  });
});

describe('checkResultUrl: exact hosts', () => {
  const EXACT: ResultUrlPolicy = { hosts: ['dashscope-result-bj.oss-cn-beijing.aliyuncs.com'] };

  it('accepts the exact host', () => {
    // Act
    const result = checkResultUrl(RESULT_URL, EXACT);

    // Assess
    expect(reasonOf(result)).toBeUndefined();
  });

  it('refuses a subdomain of an exact host', () => {
    // Act
    const result = checkResultUrl('https://x.dashscope-result-bj.oss-cn-beijing.aliyuncs.com/x.png', EXACT);

    // Assess
    expect(reasonOf(result)).toContain('allow-list');
  });

  it('refuses a sibling host of an exact host', () => {
    // Act
    const result = checkResultUrl('https://dashscope-result-sh.oss-cn-shanghai.aliyuncs.com/x.png', EXACT);

    // Assess
    expect(reasonOf(result)).toContain('allow-list');
  });

  it('refuses everything with an empty allow-list', () => {
    // Act
    const result = checkResultUrl(RESULT_URL, { hosts: [] });

    // Assess
    expect(reasonOf(result)).toContain('allow-list');
  });
});
