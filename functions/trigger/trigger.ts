import * as z from 'zod';
import type { Clock } from '../shared/clock.js';
import { describeError, StorageUnavailableError } from '../shared/errors.js';
import { DETAIL_TYPE, deliveryId, type EventPublisher } from '../shared/events.js';
import { ExecutionAlreadyExistsError, type ExecutionService } from '../shared/execution-service.js';
import type { GenerationIndex } from '../shared/generation-index.js';
import type { Model } from '../shared/generation-request.js';
import type { Logger } from '../shared/logger.js';
import type { ObjectStore } from '../shared/object-store.js';
import { isRequestFileKey, REPORT_SUFFIX } from '../shared/request-keys.js';
import { parseRequestFile, requestExecutionName } from './request-file.js';

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
  readonly clock: Clock;
  readonly events: EventPublisher;
  readonly logger: Logger;
  /** The model of a request that names none. @default the request schema's */
  readonly defaultModel?: Model;
}

export interface LineResult {
  readonly line: number;
  readonly id?: string;
  /** `started`; `duplicate` when an earlier delivery of the same object already started it; `rejected`. */
  readonly status: 'started' | 'duplicate' | 'rejected';
  readonly error?: { readonly type: string; readonly message: string; readonly details?: unknown };
}

export interface TriggerReport {
  readonly source: { readonly bucket: string; readonly key: string; readonly version: string };
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
  try {
    await startLines(source, object['version-id'], results, deps);
  } catch (error) {
    const failure = { name: errorName(error), message: describeError(error), retried: RETRIED };
    deps.logger.warn('Request file not finished: reported, to be retried', { key, reason: failure.message });
    await writeReport({ source, results, failure }, deps).catch((reportError: unknown) =>
      deps.logger.warn('Failure report not written', { key, reason: describeError(reportError) }),
    );
    throw error;
  }

  const report: TriggerReport = { source, results };
  await writeReport(report, deps);
  deps.logger.info('Request file processed', {
    key,
    started: results.filter((r) => r.status === 'started').length,
    duplicate: results.filter((r) => r.status === 'duplicate').length,
    rejected: results.filter((r) => r.status === 'rejected').length,
  });
  return report;
}

/** Reads the file and starts each valid line, appending each line's outcome to `results` as it goes. */
async function startLines(
  source: TriggerReport['source'],
  versionId: string | undefined,
  results: LineResult[],
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

  for (const parsed of parseRequestFile(key, text, deps.defaultModel)) {
    if ('error' in parsed) {
      results.push({ line: parsed.line, status: 'rejected', error: parsed.error });
      // A re-delivered file announces the same rejection again: the same eventId lets receivers drop it.
      const eventId = deliveryId(
        'evt',
        DETAIL_TYPE.rejected,
        bucket,
        key,
        source.version,
        String(parsed.line),
      );
      await deps.events
        .publish(DETAIL_TYPE.rejected, { eventId, source, line: parsed.line, error: parsed.error })
        .catch((error: unknown) =>
          deps.logger.warn('Rejection event not published', { key, reason: describeError(error) }),
        );
      continue;
    }
    const id = requestExecutionName(source, parsed.line);
    if (await startedBefore(id, deps)) {
      results.push({ line: parsed.line, id, status: 'duplicate' });
      continue;
    }
    try {
      await deps.index.register({
        id,
        createdAt: new Date(deps.clock.now()).toISOString(),
        source: 'request-file',
        request: parsed.request as Record<string, unknown>,
      });
      await deps.executions.start(id, parsed.request);
      results.push({ line: parsed.line, id, status: 'started' });
    } catch (error) {
      if (!(error instanceof ExecutionAlreadyExistsError)) throw error;
      results.push({ line: parsed.line, id, status: 'duplicate' });
    }
  }
}

/**
 * Whether an earlier delivery of the same object version already started this line. Step
 * Functions answers a repeated StartExecution of a running execution as a new start, so the
 * execution is looked up, but only when the index has the record: a fresh line costs one GetItem,
 * no DescribeExecution. A record without an execution (a delivery that stopped between the two)
 * is started now.
 */
async function startedBefore(id: string, deps: TriggerDeps): Promise<boolean> {
  if ((await deps.index.get(id)) === undefined) return false;
  return (await deps.executions.describe(id)) !== undefined;
}

/** Writes the report next to the request file, `<key>.result`. */
async function writeReport(report: TriggerReport, deps: TriggerDeps): Promise<void> {
  await deps.objects.putJson(
    { bucket: report.source.bucket, key: `${report.source.key}${REPORT_SUFFIX}` },
    report,
  );
}

const errorName = (error: unknown): string => (error instanceof Error ? error.name : 'Error');
