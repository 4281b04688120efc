import { describe, expect, it } from 'vitest';
import { batchLineId, batchOfId, requestFileBatchId } from '../../functions/shared/batch.js';
import { isRequestFileKey, REPORT_SUFFIX } from '../../functions/shared/request-keys.js';
import { parseRequestFile } from '../../functions/trigger/request-file.js';

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

describe("a request file's generation ids", () => {
  const source = { bucket: 'b', key: 'requests/batch.jsonl', version: 'v1' };
  const lineId = (file: typeof source, line: number) => batchLineId(requestFileBatchId(file), line);

  it('are the same for the same object version and line, so a re-delivery starts nothing new', () => {
    expect(lineId(source, 3)).toBe(lineId({ ...source }, 3));
  });

  it('differ per line, per object version, per key and per bucket', () => {
    const names = new Set([
      lineId(source, 1),
      lineId(source, 2),
      lineId({ ...source, version: 'v2' }, 1),
      lineId({ ...source, key: 'requests/other.jsonl' }, 1),
      lineId({ ...source, bucket: 'other' }, 1),
    ]);
    expect(names.size).toBe(5);
  });

  it('are valid execution names and generation ids, named after their batch: file-<hash>-<line>', () => {
    const batchId = requestFileBatchId(source);
    expect(batchId).toMatch(/^file-[A-Za-z0-9_-]{40}$/);
    expect(lineId(source, 1)).toBe(`${batchId}-1`);
    // Step Functions takes names up to 80 characters; the longest line a batch holds fits.
    expect(lineId(source, 10_000).length).toBeLessThanOrEqual(80);
  });

  it('give back their batch and line', () => {
    expect(batchOfId(lineId(source, 42))).toEqual({ batchId: requestFileBatchId(source), line: 42 });
  });
});
