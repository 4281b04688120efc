import { describe, expect, it } from 'vitest';
import { isRequestFileKey, REPORT_SUFFIX } from '../../functions/shared/request-keys.js';
import { parseRequestFile, requestExecutionName } from '../../functions/trigger/request-file.js';

describe('parseRequestFile', () => {
  it('reads a .json file as one request on line 1, defaults applied', () => {
    const [parsed] = parseRequestFile('requests/one.json', '{"prompt": "a red fox"}');

    expect(parsed).toMatchObject({ line: 1, request: { prompt: 'a red fox', n: 1, size: '1024*1024' } });
  });

  it('reads one request per JSONL line, numbering lines as an editor does and skipping blank ones', () => {
    const text = '{"prompt": "one"}\n\n{"prompt": "three"}\r\n   \n{"prompt": "five"}\n';

    const parsed = parseRequestFile('requests/batch.jsonl', text);

    expect(parsed.map((p) => p.line)).toEqual([1, 3, 5]);
    expect(parsed.every((p) => 'request' in p)).toBe(true);
  });

  it('reports an invalid line with its number and each bad field, and keeps the valid lines', () => {
    const text = '{"prompt": "ok"}\n{"prompt": "", "n": 9, "negativePrompt": "x"}\n{"prompt": "also ok"}';

    const parsed = parseRequestFile('requests/mixed.jsonl', text);

    expect(parsed.map((p) => ('request' in p ? 'ok' : 'bad'))).toEqual(['ok', 'bad', 'ok']);
    const bad = parsed[1];
    if (!bad || !('error' in bad)) throw new Error('expected an error');
    expect(bad.error.message).toMatch(/^line 2: /);
    expect(bad.error.details.map((d) => d.field).sort()).toEqual(['n', 'negativePrompt', 'prompt']);
  });

  it('rejects only the line whose bytes were not UTF-8, as S3 text decoding left them', () => {
    // A Latin-1 "é" on line 2, decoded as UTF-8 the way the object store reads text.
    const bytes = Buffer.concat([
      Buffer.from('{"prompt": "one"}\n'),
      Buffer.from('{"prompt": "caf\u00e9"}\n', 'latin1'),
      Buffer.from('{"prompt": "three"}\n'),
    ]);

    const parsed = parseRequestFile('requests/latin1.jsonl', bytes.toString('utf8'));

    expect(parsed.map((p) => ('request' in p ? 'ok' : 'bad'))).toEqual(['ok', 'bad', 'ok']);
    expect(parsed[1]).toMatchObject({
      line: 2,
      error: { details: [{ field: 'prompt', message: expect.stringMatching(/U\+FFFD.*not UTF-8/) }] },
    });
  });

  it('reports a line that is not JSON', () => {
    const [parsed] = parseRequestFile('requests/broken.jsonl', '{"prompt": ');

    expect(parsed).toMatchObject({
      line: 1,
      error: { type: 'invalid_request', message: expect.stringMatching(/^line 1: is not valid JSON/) },
    });
  });
});

describe('isRequestFileKey', () => {
  it.each([
    ['requests/a.json', true],
    ['requests/nested/b.jsonl', true],
    [`requests/a.jsonl${REPORT_SUFFIX}`, false],
    ['generations/x/manifest.json', false],
    ['requests/a.txt', false],
  ])('%s → %s', (key, expected) => {
    expect(isRequestFileKey(key)).toBe(expected);
  });
});

describe('requestExecutionName', () => {
  const source = { bucket: 'b', key: 'requests/batch.jsonl', version: 'v1' };

  it('is the same for the same object version and line, so a re-delivery starts nothing new', () => {
    expect(requestExecutionName(source, 3)).toBe(requestExecutionName({ ...source }, 3));
  });

  it('differs per line, per object version and per key', () => {
    const names = new Set([
      requestExecutionName(source, 1),
      requestExecutionName(source, 2),
      requestExecutionName({ ...source, version: 'v2' }, 1),
      requestExecutionName({ ...source, key: 'requests/other.jsonl' }, 1),
    ]);
    expect(names.size).toBe(4);
  });

  it('is a valid execution name and generation id', () => {
    expect(requestExecutionName(source, 1)).toMatch(/^req-[A-Za-z0-9_-]{40}$/);
  });
});
