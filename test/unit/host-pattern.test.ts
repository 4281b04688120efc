import { describe, expect, it } from 'vitest';
import { isHostPattern, isSecureOrLoopback } from '../../functions/shared/host-pattern.js';

describe('isHostPattern', () => {
  it.each([
    '*.aliyuncs.com',
    'dashscope-result-bj.oss-cn-beijing.aliyuncs.com',
    'localhost',
    '127.0.0.1',
    '*.oss-cn-beijing.aliyuncs.com',
  ])('accepts %s', (value) => {
    expect(isHostPattern(value)).toBe(true);
  });

  it.each([
    '*.com',
    '*',
    '.',
    '-',
    '*..',
    'com',
    'a..b',
    '-a.com',
    'a.com-',
    '300.1.1.1',
    'aliyuncs.com/path',
    '*.*.com',
  ])('refuses %s', (value) => {
    expect(isHostPattern(value)).toBe(false);
  });
});

describe('isSecureOrLoopback', () => {
  it.each([
    ['https://dashscope.aliyuncs.com/api/v1', true],
    ['http://127.0.0.1:4010/api/v1', true],
    ['http://localhost:4010/api/v1', true],
    ['http://dashscope.aliyuncs.com/api/v1', false],
    ['ftp://dashscope.aliyuncs.com/api/v1', false],
    ['not a url', false],
  ])('%s → %s', (url, expected) => {
    expect(isSecureOrLoopback(url)).toBe(expected);
  });
});
