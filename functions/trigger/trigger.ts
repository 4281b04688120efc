import * as z from 'zod';
import {
  type BatchIndex,
  type BatchRecord,
  type BatchSummary,
  batchIdSchema,
  MAX_BATCH_LINES,
  requestFileBatchId,
} from '../shared/batch.js';
import { type BatchLineResult, createBatch, startBatchLines } from '../shared/batch-lines.js';
import { reportOutcomes } from '../shared/batch-report.js';
import type { Clock } from '../shared/clock.js';
import { describeError, StorageUnavailableError } from '../shared/errors.js';
import { DETAIL_TYPE, deliveryId, type EventPublisher } from '../shared/events.js';
import type { ExecutionService } from '../shared/execution-service.js';
import type { GenerationIndex } from '../shared/generation-index.js';
import type { Model } from '../shared/generation-request.js';
import type { Logger } from '../shared/logger.js';
import type { ObjectStore } from '../shared/object-store.js';
import { API_BATCH_PREFIX, isRequestFileKey, REPORT_SUFFIX } from '../shared/request-keys.js';
import { parseRequestFile } from './request-file.js';

/** S3's "Object Created" event as EventBridge delivers it (the fields we use). */
export const objectCreatedEventSchema = z.object({
  'detail-type': z.literal('Object Created'),
  detail: z.object({
    bucket: z.object({ name: z.string() }),
    object: z.object({ key: z.string(), etag: z.string().optional(), 'version-id': z.string().optional() }),
  }),
});
export type ObjectCreatedEvent = z.infer<typeof objectCreatedEventSchema>;

export interface TriggerDeps {
  /** Where request files are read from and their reports written to. */
  readonly objects: ObjectStore;
  /** Starts each line; describes a line's execution only when its record already exists. */
  readonly executions: Pick<ExecutionService, 'start' | 'describe'>;
  /** Each started line is registered here first (source `request-file`). */
  readonly index: Pick<GenerationIndex, 'get' | 'register'>;
  /** Every request file is a batch (docs/batches.md). */
  readonly batches: Pick<BatchIndex, 'create' | 'get' | 'peek'>;
  readonly clock: Clock;
  readonly events: EventPublisher;
  readonly logger: Logger;
  /** The model of a request that names none. @default the request schema's */
  readonly defaultModel?: Model;
}

/** `started`; `duplicate` when an earlier delivery of the same object already started it; `rejected`. */
export type LineResult = BatchLineResult;

export interface TriggerReport {
  readonly source: { readonly bucket: string; readonly key: string; readonly version: string };
  /**
   * The batch the file is (`file-…`, the same for a redelivery; or the API's `batch-…` it was
   * written for), with its links; once it ends, its status, counts and results key too.
   */
  readonly batch?: { readonly id: string; readonly links: { readonly self: string } };
  /** Every line handled so far: all of them, unless `failure` says why the trigger stopped. */
  readonly results: readonly LineResult[];
  /**
   * Why the trigger stopped before the end of the file (S3 unreadable, Step Functions refusing
   * starts). The delivery is retried, and lines already started report `duplicate` then; after
   * the last retry the event is kept in the dead-letter queue (docs/events.md, runbook).
   */
  readonly failure?: { readonly name: string; readonly message: string; readonly retried: string };
}

/** What a failure report tells the user happens next. */
const RETRIED =
  'The trigger is invoked again (Lambda retries twice); lines already started are not started again. After the last retry the S3 event goes to the dead-letter queue: see docs/events.md, runbook.';

/**
 * Reads a request file from S3, starts one execution per valid request under a deterministic
 * name, and writes a report (`<key>.result`) listing every line's outcome. An invalid line is
 * reported with its number and reason and announced as a "Generation Request Rejected" event;
 * the valid lines still run. A re-delivered event starts nothing twice.
 *
 * When it cannot finish (the file cannot be read, an execution cannot be started), it writes the
 * report so far with the failure, where S3 lets it, and throws: Lambda retries the invocation,
 * then sends the event to the dead-letter queue. Throws {@link StorageUnavailableError} when the
 * file cannot be read, and whatever the execution service threw when a start fails.
 */
export async function triggerFromObject(
  event: ObjectCreatedEvent,
  deps: TriggerDeps,
): Promise<TriggerReport> {
  const { bucket, object } = event.detail;
  const key = decodeURIComponent(object.key.replace(/\+/g, ' '));
  const version = object['version-id'] ?? object.etag ?? 'unversioned';
  const source = { bucket: bucket.name, key, version };
  if (!isRequestFileKey(key)) {
    deps.logger.info('Not a request file: ignored', { key });
    return { source, results: [] };
  }

  const results: LineResult[] = [];
  const started: { batch?: TriggerReport['batch'] } = {};
  try {
    await startLines(source, object['version-id'], results, started, deps);
  } catch (error) {
    const failure = { name: errorName(error), message: describeError(error), retried: RETRIED };
    deps.logger.warn('Request file not finished: reported, to be retried', { key, reason: failure.message });
    await writeReport({ source, ...started, results, failure }, deps).catch((reportError: unknown) =>
      deps.logger.warn('Failure report not written', { key, reason: describeError(reportError) }),
    );
    throw error;
  }

  const report: TriggerReport = { source, ...started, results };
  await writeReport(report, deps);
  // A batch that ended before this report was written (or a file delivered again after its end)
  // keeps its final outcomes in the report.
  const id = started.batch?.id;
  const summary = id ? await deps.batches.peek(id) : undefined;
  if (id && summary?.resultsKey && (summary.status === 'completed' || summary.status === 'cancelled')) {
    // Ended: its counts are frozen on its item, one read.
    const ended = await deps.batches.get(id);
    if (ended) await reportOutcomes(ended, deps.objects, deps.logger);
  }
  deps.logger.info('Request file processed', {
    key,
    started: results.filter((r) => r.status === 'started').length,
    duplicate: results.filter((r) => r.status === 'duplicate').length,
    rejected: results.filter((r) => r.status === 'rejected').length,
  });
  return report;
}

/** Reads the file, makes (or finds) its batch and starts each valid line, appending each line's outcome to `results`. */
async function startLines(
  source: TriggerReport['source'],
  versionId: string | undefined,
  results: LineResult[],
  started: { batch?: TriggerReport['batch'] },
  deps: TriggerDeps,
): Promise<void> {
  const { bucket, key } = source;
  let text: string;
  try {
    text = await deps.objects.getText({ bucket, key, versionId });
  } catch (error) {
    throw new StorageUnavailableError(`S3 read of ${key} failed: ${(error as Error).message}`, {
      cause: error,
    });
  }

  const lines = withinBatchLimits(parseRequestFile(key, text, deps.defaultModel));
  // A file with no valid line is no batch: nothing would run, and nothing would end it.
  const valid = lines.some((line) => !('error' in line));
  const batch = (await apiBatchOf(key, deps)) ?? (valid ? await fileBatch(source, lines, deps) : undefined);
  if (batch) started.batch = { id: batch.id, links: { self: `/v1/batches/${batch.id}` } };
  for (const parsed of lines) {
    if (!('error' in parsed)) continue;
    // A re-delivered file announces the same rejection again: the same eventId lets receivers drop it.
    const eventId = deliveryId('evt', DETAIL_TYPE.rejected, bucket, key, source.version, String(parsed.line));
    await deps.events
      .publish(DETAIL_TYPE.rejected, { eventId, source, line: parsed.line, error: parsed.error })
      .catch((error: unknown) =>
        deps.logger.warn('Rejection event not published', { key, reason: describeError(error) }),
      );
  }
  if (!batch) {
    for (const parsed of lines) {
      if ('error' in parsed) results.push({ line: parsed.line, status: 'rejected', error: parsed.error });
    }
    return;
  }
  await startBatchLines(batch.id, batch.source, lines, { ...deps, bucket }, results);
}

/** The largest line number a generation id carries (`<batch id>-<line>`). */
const MAX_LINE_NUMBER = 9_999_999;

/**
 * A file's lines as one batch holds them: the first {@link MAX_BATCH_LINES}; each line past them
 * (or past {@link MAX_LINE_NUMBER}) is rejected with the reason.
 */
export function withinBatchLimits(
  lines: ReturnType<typeof parseRequestFile>,
): ReturnType<typeof parseRequestFile> {
  return lines.map((parsed, index) => {
    if (index < MAX_BATCH_LINES && parsed.line <= MAX_LINE_NUMBER) return parsed;
    const reason = `is past the ${MAX_BATCH_LINES.toLocaleString('en-US')} requests a batch holds`;
    return {
      line: parsed.line,
      error: {
        type: 'invalid_request',
        message: `line ${parsed.line}: ${reason}`,
        details: [{ field: '(line)', message: reason }],
      },
    };
  });
}

/**
 * The batch the API made and wrote this file for (`requests/batches/<batch id>.jsonl`), or
 * undefined for any other file.
 */
async function apiBatchOf(key: string, deps: TriggerDeps): Promise<BatchSummary | undefined> {
  if (!key.startsWith(API_BATCH_PREFIX)) return undefined;
  const id = batchIdSchema.safeParse(key.slice(API_BATCH_PREFIX.length).replace(/\.jsonl?$/, ''));
  return id.success ? deps.batches.peek(id.data) : undefined;
}

/** A request file's own batch: its id from the bucket, key and version, so a redelivery finds it. */
async function fileBatch(
  source: TriggerReport['source'],
  lines: ReturnType<typeof parseRequestFile>,
  deps: TriggerDeps,
): Promise<BatchRecord> {
  const id = requestFileBatchId(source);
  const { batch } = await createBatch(
    {
      id,
      createdAt: new Date(deps.clock.now()).toISOString(),
      source: 'request-file',
      priority: 'batch',
      file: source,
      fingerprint: id,
    },
    lines,
    { ...deps, bucket: source.bucket },
  );
  return batch;
}

/** Writes the report next to the request file, `<key>.result`. */
async function writeReport(report: TriggerReport, deps: TriggerDeps): Promise<void> {
  await deps.objects.putJson(
    { bucket: report.source.bucket, key: `${report.source.key}${REPORT_SUFFIX}` },
    report,
  );
}

const errorName = (error: unknown): string => (error instanceof Error ? error.name : 'Error');
