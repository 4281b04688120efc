import { randomBytes } from 'node:crypto';
import {
  type BatchCounts,
  type BatchIndex,
  type BatchRecord,
  batchOfId,
  COUNT_KEYS,
  countOf,
  emptyCounts,
  type ResultLine,
  rejectedKeyOf,
  resultLineOf,
  resultsKeyOf,
} from '../shared/batch.js';
import type { RejectedLines } from '../shared/batch-lines.js';
import { writeReportOutcomes } from '../shared/batch-report.js';
import type { Clock } from '../shared/clock.js';
import { describeError } from '../shared/errors.js';
import { DETAIL_TYPE, deliveryId, type EventPublisher } from '../shared/events.js';
import type { GenerationIndex, GenerationRecord } from '../shared/generation-index.js';
import type { Logger } from '../shared/logger.js';
import type { ObjectStore } from '../shared/object-store.js';
import { CALL_TIMING, withRetries } from './retry.js';
import { deliverWebhook, type WebhookPolicy } from './webhook.js';

/** The webhook type of a batch's end (Standard Webhooks, as for generations). */
export const BATCH_WEBHOOK_TYPE = 'batch.completed';

/** A claim older than this is a finisher that died: the next one takes it over. */
export const STALE_CLAIM_MS = 10 * 60 * 1000;

export interface BatchCompletionDeps {
  readonly batches: BatchIndex;
  /** Each line's record as it ended, read strongly. */
  readonly index: Pick<GenerationIndex, 'get'>;
  readonly objects: ObjectStore;
  readonly bucket: string;
  readonly events: EventPublisher;
  readonly logger: Logger;
  readonly clock: Clock;
  /** The webhook signing secret; without it (webhooks off), the batch's webhook is not sent. */
  readonly webhookSecret?: () => Promise<string>;
  readonly webhookPolicy: WebhookPolicy;
  readonly webhookTiming?: { attempts?: number; firstBackoffMs?: number; timeoutMs?: number };
}

/**
 * After a generation of a batch ended: when it was the batch's last, completes the batch, once.
 *
 * Whoever records a batch's last end (Notify, the reconciler) calls this; each finds out with
 * one strong check whether every line ended, and only the one whose claim lands
 * ({@link BatchIndex.claimCompletion}) goes on: it writes `batches/{id}/results.jsonl`, brings a
 * request file's report up to the final outcomes, publishes "Batch Completed" and sends
 * `batch.completed` to the batch's webhook, then marks the batch ended. A finisher that dies
 * half way leaves its claim, which the next call takes over after {@link STALE_CLAIM_MS}; the
 * event and the webhook then go out again with the same ids (`eventId`, `webhook-id`).
 *
 * Never throws: a batch's end must not change its generation's (the failure is logged).
 */
export async function completeBatchOf(
  generationId: string,
  deps: BatchCompletionDeps,
): Promise<'completed' | 'open' | 'taken' | 'not-a-batch' | 'failed'> {
  const batch = batchOfId(generationId);
  if (!batch) return 'not-a-batch';
  try {
    return await completeBatch(batch.batchId, deps);
  } catch (error) {
    deps.logger.error('Batch not completed', { batchId: batch.batchId, reason: describeError(error) });
    return 'failed';
  }
}

/** {@link completeBatchOf} for a batch by its id (the cancel of a batch whose lines all ended). */
export async function completeBatch(
  batchId: string,
  deps: BatchCompletionDeps,
): Promise<'completed' | 'open' | 'taken'> {
  if (!(await deps.batches.allEnded(batchId))) return 'open';
  const owner = randomBytes(8).toString('hex');
  const now = deps.clock.now();
  const claimed = await deps.batches.claimCompletion(
    batchId,
    owner,
    new Date(now).toISOString(),
    new Date(now - STALE_CLAIM_MS).toISOString(),
  );
  if (!claimed) return 'taken';
  const log = { batchId };

  const { lines, counts } = await resultsOf(claimed, deps);
  const resultsKey = resultsKeyOf(batchId);
  await putText(
    deps,
    resultsKey,
    lines.map((line) => JSON.stringify(line)).join('\n') + (lines.length ? '\n' : ''),
  );
  const status = claimed.status === 'cancelling' ? 'cancelled' : 'completed';
  await writeReportOutcomes({ ...claimed, status }, lines, counts, deps.objects, deps.logger);

  const completedAt = new Date(deps.clock.now()).toISOString();
  const detail = {
    id: batchId,
    status,
    source: claimed.source,
    createdAt: claimed.createdAt,
    completedAt,
    counts,
    resultsKey,
    ...(claimed.metadata ? { metadata: claimed.metadata } : {}),
    ...(claimed.file ? { file: claimed.file } : {}),
  };
  const eventId = deliveryId('evt', batchId, DETAIL_TYPE.batchCompleted);
  try {
    await withRetries(
      () => deps.events.publish(DETAIL_TYPE.batchCompleted, { eventId, ...detail }),
      CALL_TIMING,
    );
  } catch (error) {
    // The claim stays: the next finisher after STALE_CLAIM_MS publishes it (the same eventId).
    deps.logger.error('Batch Completed not published', { ...log, reason: describeError(error) });
    throw error;
  }
  if (claimed.webhookUrl && deps.webhookSecret) {
    const delivery = await deliverWebhook(claimed.webhookUrl, BATCH_WEBHOOK_TYPE, detail, {
      webhookId: deliveryId('msg', batchId, BATCH_WEBHOOK_TYPE),
      secret: await deps.webhookSecret(),
      policy: deps.webhookPolicy,
      ...deps.webhookTiming,
    });
    await deps.objects
      .putJson({ bucket: deps.bucket, key: `batches/${batchId}/webhook.json` }, delivery)
      .catch((error: unknown) =>
        deps.logger.warn('Batch webhook record not written', { ...log, reason: describeError(error) }),
      );
    if (!delivery.delivered)
      deps.logger.warn('Batch webhook not delivered', { ...log, attempts: delivery.attempts.length });
  } else if (claimed.webhookUrl) {
    deps.logger.warn('Batch webhook requested but webhooks are off in this deployment', log);
  }
  await deps.batches.complete(batchId, owner, { status, at: completedAt, resultsKey, counts });
  deps.logger.info('Batch completed', { ...log, status, ...counts });
  return 'completed';
}

/** Every line's outcome, in line order, and the counts they make. */
async function resultsOf(
  batch: BatchRecord,
  deps: BatchCompletionDeps,
): Promise<{ lines: ResultLine[]; counts: BatchCounts }> {
  const records: GenerationRecord[] = [];
  let afterLine: number | undefined;
  for (;;) {
    const page = await deps.batches.lines(batch.id, { limit: 100, afterLine });
    records.push(...page.items);
    const last = page.items.at(-1);
    if (!page.more || !last) break;
    afterLine = batchOfId(last.id)?.line;
  }
  const lines: ResultLine[] = [];
  const counts = emptyCounts(batch.counts.total, batch.counts.rejected);
  for (const listed of records) {
    // A page may lag the last write: a line it shows unfinished is read itself.
    const ended =
      listed.status === 'queued' || listed.status === 'running' ? await deps.index.get(listed.id) : listed;
    const record = ended ?? listed;
    const line = batchOfId(record.id)?.line ?? 0;
    counts[countOf(record)] += 1;
    lines.push(resultLineOf(record, line));
  }
  if (batch.counts.rejected > 0) {
    const rejected = await readRejected(batch.id, deps);
    for (const entry of rejected.lines)
      lines.push({ line: entry.line, status: 'rejected', error: entry.error });
  }
  lines.sort((a, b) => a.line - b.line);
  for (const key of COUNT_KEYS) counts[key] = Math.max(0, counts[key]);
  return { lines, counts };
}

async function readRejected(batchId: string, deps: BatchCompletionDeps): Promise<RejectedLines> {
  try {
    const text = await deps.objects.getText({ bucket: deps.bucket, key: rejectedKeyOf(batchId) });
    return JSON.parse(text) as RejectedLines;
  } catch (error) {
    deps.logger.warn('Rejected lines of the batch not read', { batchId, reason: describeError(error) });
    return { lines: [] };
  }
}

async function putText(deps: BatchCompletionDeps, key: string, body: string): Promise<void> {
  await deps.objects.putText({ bucket: deps.bucket, key }, body, 'application/x-ndjson');
}
