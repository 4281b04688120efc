import { describe, expect, it } from 'vitest';
import { batchLineId, batchOfId } from '../../functions/shared/batch.js';
import { parseRequestFile } from '../../functions/trigger/request-file.js';
import { withinBatchLimits } from '../../functions/trigger/trigger.js';

describe('a request file as one batch holds it', () => {
  it('keeps the first 10,000 requests and rejects each line past them, with its reason', () => {
    const text = Array.from({ length: 10_002 }, (_, i) => JSON.stringify({ prompt: `p${i}` })).join('\n');
    const lines = withinBatchLimits(parseRequestFile('requests/big.jsonl', text));
    expect(lines.slice(0, 10_000).every((line) => 'request' in line)).toBe(true);
    expect(lines.slice(10_000)).toEqual([
      expect.objectContaining({
        line: 10_001,
        error: expect.objectContaining({
          message: expect.stringMatching(/^line 10001: is past the 10,000 requests/),
        }),
      }),
      expect.objectContaining({ line: 10_002, error: expect.objectContaining({ type: 'invalid_request' }) }),
    ]);
  });

  it('rejects a request whose line number a generation id cannot carry, and names every other line’s batch', () => {
    const text = `${'\n'.repeat(10_000_000)}${JSON.stringify({ prompt: 'far down' })}`;
    const [line] = withinBatchLimits(parseRequestFile('requests/far.jsonl', text));
    expect(line).toMatchObject({ line: 10_000_001, error: { type: 'invalid_request' } });
    expect(batchOfId(batchLineId('file-abc', 9_999_999))).toEqual({ batchId: 'file-abc', line: 9_999_999 });
  });
});
