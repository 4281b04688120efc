import { type BatchCounts, type BatchRecord, type ResultLine, resultsKeyOf } from './batch.js';
import { describeError } from './errors.js';
import type { Logger } from './logger.js';
import type { ObjectStore } from './object-store.js';
import { REPORT_SUFFIX } from './request-keys.js';

/**
 * Brings a request file's report (`<key>.result`) up to its batch's final outcomes: each line's
 * `outcome` (status, image keys, seeds, error) and the batch's end (`batch`: id, status, counts,
 * results key). Idempotent: whoever writes the report last (the batch's finisher, or a trigger
 * that wrote its own report after the end) leaves the outcomes in it. Nothing for a batch made
 * from no file.
 */
export async function writeReportOutcomes(
  batch: Pick<BatchRecord, 'id' | 'file'> & { readonly status: 'completed' | 'cancelled' },
  lines: readonly ResultLine[],
  counts: BatchCounts,
  objects: ObjectStore,
  logger: Logger,
): Promise<void> {
  const { file } = batch;
  if (!file) return;
  const location = { bucket: file.bucket, key: `${file.key}${REPORT_SUFFIX}` };
  let report: { results?: Array<Record<string, unknown>> } & Record<string, unknown> = {};
  try {
    report = JSON.parse(await objects.getText(location));
  } catch (error) {
    logger.warn('Request file report not read: written anew', {
      batchId: batch.id,
      reason: describeError(error),
    });
  }
  const outcomes = new Map(lines.map((line) => [line.line, line]));
  const results = (report.results ?? []).map((result) => {
    const outcome = outcomes.get(Number(result.line));
    if (!outcome || outcome.status === 'rejected') return result;
    const { line: _, id: __, ...rest } = outcome;
    return { ...result, outcome: rest };
  });
  await objects.putJson(location, {
    ...report,
    results,
    batch: {
      id: batch.id,
      links: { self: `/v1/batches/${batch.id}` },
      status: batch.status,
      counts,
      resultsKey: resultsKeyOf(batch.id),
    },
  });
}

/** {@link writeReportOutcomes} of an ended batch, from its results file. */
export async function reportOutcomes(
  batch: BatchRecord,
  objects: ObjectStore,
  logger: Logger,
): Promise<void> {
  if (!batch.file || !batch.resultsKey || (batch.status !== 'completed' && batch.status !== 'cancelled'))
    return;
  try {
    const text = await objects.getText({ bucket: batch.file.bucket, key: batch.resultsKey });
    const lines = text
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => JSON.parse(line) as ResultLine);
    await writeReportOutcomes({ ...batch, status: batch.status }, lines, batch.counts, objects, logger);
  } catch (error) {
    logger.warn('Request file report not brought up to the batch end', {
      batchId: batch.id,
      reason: describeError(error),
    });
  }
}
