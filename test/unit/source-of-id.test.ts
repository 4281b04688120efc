import { describe, expect, it } from 'vitest';
import { batchLineId, newBatchId, requestFileBatchId } from '../../functions/shared/batch.js';
import { sourceOfId } from '../../functions/shared/index-updates.js';

/**
 * A writer that finds no record (the reconciler, a Lambda whose registration was lost) tells the
 * generation's source from its id alone.
 */
describe('sourceOfId', () => {
  const fileBatch = requestFileBatchId({ bucket: 'images', key: 'requests/a.jsonl', version: 'v1' });

  it.each([
    ['a request file line (file-…-N)', batchLineId(fileBatch, 3), 'request-file'],
    ['a request file line named before batches (req-…)', 'req-AbC_dEf-0123456789', 'request-file'],
    [
      "a line of the API's batch (batch-…-N)",
      batchLineId(newBatchId(Date.parse('2026-03-01T12:00:00Z')), 1),
      'api',
    ],
    ['a generation of the API (gen-…)', 'gen-20260301120000-abcd1234', 'api'],
    ['an Idempotency-Key generation (idem-…)', 'idem-AbC_dEf', 'api'],
    ['an event (evt-…)', 'evt-AbC_dEf', 'event'],
    ['a schedule (sch-…)', 'sch-AbC_dEf', 'schedule'],
    ['a name given to StartExecution by hand', 'my-own-run', 'direct'],
    ['a name that only contains a prefix', 'my-file-1', 'direct'],
  ])('%s: %s → %s', (_, id, source) => {
    expect(sourceOfId(id)).toBe(source);
  });
});
