import { createHash } from 'node:crypto';
import * as z from 'zod';
import type { Lane, QueueStanding } from '../shared/admission.js';
import {
  BatchConflictError,
  type BatchCounts,
  type BatchIndex,
  type BatchMetadata,
  type BatchRecord,
  type BatchSource,
  batchOfId,
  type CountKey,
  idempotentBatchId,
  MAX_BATCH_LINES,
  newBatchId,
} from '../shared/batch.js';
import { type BatchLine, createBatch } from '../shared/batch-lines.js';
import { canonicalJson } from '../shared/canonical-json.js';
import { eachAtMost } from '../shared/each-at-most.js';
import type { GenerationRequest } from '../shared/generation-request.js';
import type { ObjectStore } from '../shared/object-store.js';
import { batchCompletionMs, typicalRunSeconds } from '../shared/queue-estimate.js';
import { API_BATCH_PREFIX } from '../shared/request-keys.js';
import { DEFAULT_RUN_TIME_MODEL } from '../shared/run-time-estimate.js';
import type { WebhookPolicy } from '../shared/webhook-url.js';
import { checkCreateRequest } from './create-request.js';
import { cancelGeneration, type GenerationsDeps } from './generations.js';

/** What the batch routes need beyond the generations': the batches and where the API writes their requests. */
export interface BatchesDeps extends Omit<GenerationsDeps, 'batches' | 'objects' | 'bucket'> {
  readonly batches: BatchIndex;
  /** Where a batch's requests are written for the trigger (`requests/batches/<id>.jsonl`). */
  readonly objects: ObjectStore;
  readonly bucket: string;
}

/** A batch as the API shows it. */
export interface BatchView {
  readonly id: string;
  readonly status: BatchRecord['status'];
  readonly source: BatchSource;
  readonly priority: Lane;
  readonly createdAt: string;
  readonly completedAt?: string;
  /** When its last generation is expected to end, while it runs. */
  readonly estimatedCompletionAt?: string;
  readonly counts: BatchCounts;
  readonly metadata?: BatchMetadata;
  readonly file?: { readonly bucket: string; readonly key: string };
  readonly links: {
    readonly self: string;
    readonly generations: string;
    readonly cancel: string;
    readonly results: string;
  };
}

export const batchLinksFor = (id: string) => ({
  self: `/v1/batches/${id}`,
  generations: `/v1/batches/${id}/generations`,
  cancel: `/v1/batches/${id}/cancel`,
  results: `/v1/batches/${id}/results`,
});

/** The batch-wide settings of `POST /v1/batches` (beside `requests`). */
export const batchOptionsSchema = z.strictObject({
  priority: z.enum(['interactive', 'batch'], 'must be "interactive" or "batch"').optional(),
  webhook_url: z.string().optional(),
  metadata: z
    .record(
      z.string().min(1, 'a key must not be empty').max(64, 'a key is at most 64 characters'),
      z.string().max(512, 'a value is at most 512 characters'),
      // A bad key says why (its own message), not that the whole is no object.
      {
        error: (issue) =>
          issue.code === 'invalid_key'
            ? (issue.issues?.[0]?.message ?? 'has an invalid key')
            : 'must be an object of strings',
      },
    )
    .refine((value) => Object.keys(value).length <= 16, 'must have at most 16 keys')
    .optional(),
});
export type BatchOptions = z.infer<typeof batchOptionsSchema>;

/** The JSON form of `POST /v1/batches`. */
export const createBatchBodySchema = batchOptionsSchema.extend({
  requests: z
    .array(z.unknown(), 'must be a list of requests')
    .min(1, 'must hold at least one request')
    .max(MAX_BATCH_LINES, `holds at most ${MAX_BATCH_LINES} requests`),
});

/** One line of a batch checked as the API checks a single request, with the batch's lane by default. */
export function checkBatchLine(
  value: unknown,
  line: number,
  options: { defaultModel?: GenerationRequest['model']; webhookPolicy?: WebhookPolicy; priority: Lane },
): BatchLine {
  const withLane =
    value && typeof value === 'object' && !Array.isArray(value) && !('priority' in value)
      ? { ...value, priority: options.priority }
      : value;
  const checked = checkCreateRequest(withLane, options);
  if (checked.ok) return { line, request: checked.request };
  return {
    line,
    error: {
      type: 'invalid_request',
      message: `line ${line}: ${checked.problems.map((p) => `${p.field}: ${p.message}`).join('; ')}`,
      details: checked.problems,
    },
  };
}

/** Parses an NDJSON body into values, one per non-blank line numbered from 1; a line that is not JSON is kept as its error. */
export function ndjsonLines(text: string): Array<{ line: number; value?: unknown; notJson?: string }> {
  return text
    .split(/\r?\n/)
    .map((content, index) => ({ content, line: index + 1 }))
    .filter(({ content }) => content.trim() !== '')
    .map(({ content, line }) => {
      try {
        return { line, value: JSON.parse(content) as unknown };
      } catch (error) {
        return { line, notJson: (error as Error).message };
      }
    });
}

export interface CreatedBatch {
  readonly batch: BatchView;
  readonly rejected: readonly { readonly line: number; readonly error: unknown }[];
  readonly replayed: boolean;
}

/**
 * Creates a batch of `lines`: the batch, counted at once (every valid line `waiting`), then its
 * requests written to `requests/batches/<id>.jsonl`, which the trigger starts as it starts any
 * request file, with no limit of the API's time (docs/batches.md). With an Idempotency-Key the
 * id comes from the key: the same key and body replay the batch, another body is a conflict.
 * @throws BatchConflictError for an Idempotency-Key used with other requests
 */
export async function createApiBatch(
  lines: readonly BatchLine[],
  options: BatchOptions & { idempotencyKey?: string; caller?: string; source: BatchSource },
  deps: BatchesDeps,
): Promise<CreatedBatch> {
  const id = options.idempotencyKey
    ? idempotentBatchId(options.idempotencyKey)
    : newBatchId(deps.clock.now());
  const fingerprint = createHash('sha256')
    .update(
      canonicalJson({
        lines: lines.map((line) => ('error' in line ? { line: line.line, rejected: true } : line)),
        priority: options.priority ?? null,
        webhook: options.webhook_url ?? null,
        metadata: options.metadata ?? null,
      }),
    )
    .digest('base64url');
  // A key reused with other requests is refused before anything is written: createBatch writes
  // the rejected lines first, which would overwrite the first batch's (its results read them).
  if (options.idempotencyKey) {
    const existing = await deps.batches.peek(id);
    if (existing && existing.fingerprint !== fingerprint) {
      throw new BatchConflictError(`Batch ${id} exists with other requests`);
    }
  }
  const { batch, created } = await createBatch(
    {
      id,
      createdAt: new Date(deps.clock.now()).toISOString(),
      source: options.source,
      ...(options.caller ? { caller: options.caller } : {}),
      priority: options.priority ?? 'batch',
      ...(options.metadata ? { metadata: options.metadata } : {}),
      ...(options.webhook_url ? { webhookUrl: options.webhook_url } : {}),
      fingerprint,
    },
    lines,
    deps,
  );
  // A replay writes the file again while the batch runs: its first writer may have died before.
  if (created || batch.status === 'in_progress') await writeRequests(id, lines, deps);
  deps.logger.info(created ? 'Batch created' : 'Batch replayed', { batchId: id, lines: lines.length });
  const rejected = lines.flatMap((line) => ('error' in line ? [{ line: line.line, error: line.error }] : []));
  return { batch: await viewOfBatch(batch, deps), rejected, replayed: !created };
}

/** The valid lines at their line numbers (a rejected line is left blank: the trigger skips it). */
async function writeRequests(id: string, lines: readonly BatchLine[], deps: BatchesDeps): Promise<void> {
  const last = Math.max(0, ...lines.map((line) => line.line));
  const text = Array.from({ length: last }, () => '');
  for (const line of lines) if (!('error' in line)) text[line.line - 1] = JSON.stringify(line.request);
  const location = { bucket: deps.bucket, key: `${API_BATCH_PREFIX}${id}.jsonl` };
  await deps.objects.putText(location, `${text.join('\n')}\n`, 'application/x-ndjson');
}

/** The batch named `id`, or undefined. */
export async function getBatch(id: string, deps: BatchesDeps): Promise<BatchView | undefined> {
  const batch = await deps.batches.get(id);
  return batch ? viewOfBatch(batch, deps) : undefined;
}

/** One page of batches, newest first. */
export async function listBatches(
  query: { limit: number; after?: { createdAt: string; id: string } },
  deps: BatchesDeps,
): Promise<{ data: BatchView[]; last?: { createdAt: string; id: string }; more: boolean }> {
  const page = await deps.batches.list(query);
  // One read of the queue for the page's estimates, not one per batch.
  const standing = standingOnce(deps);
  const data = await Promise.all(page.items.map((batch) => viewOfBatch(batch, deps, standing)));
  const last = page.items.at(-1);
  return { data, more: page.more, ...(last ? { last: { createdAt: last.createdAt, id: last.id } } : {}) };
}

/**
 * Cancels a batch: it turns `cancelling`, every waiting line leaves the queue (no DashScope task
 * is created for it) and every running one is cancelled, as `POST /v1/generations/{id}/cancel`
 * does, `concurrency` at a time. Lines the trigger has not started yet are never started. The
 * batch ends `cancelled` when its last line has ended (its results and event as for any end).
 */
export async function cancelBatch(
  id: string,
  deps: BatchesDeps,
  concurrency = 8,
): Promise<BatchView | undefined> {
  const batch = await deps.batches.markCancelling(id);
  if (!batch) return undefined;
  if (batch.status === 'cancelling') {
    // Twice: a line the trigger started in the moment before it saw the cancel is caught the second time.
    for (let pass = 0; pass < 2; pass++) {
      for (const count of ['waiting', 'running'] as const) await cancelLines(id, count, deps, concurrency);
    }
  }
  deps.logger.info('Batch cancel', { batchId: id, status: batch.status });
  const after = await deps.batches.get(id);
  return after ? viewOfBatch(after, deps) : undefined;
}

async function cancelLines(id: string, count: CountKey, deps: BatchesDeps, concurrency: number) {
  let afterLine: number | undefined;
  for (;;) {
    const page = await deps.batches.lines(id, { count, limit: 100, afterLine });
    await eachAtMost(page.items, concurrency, async (item) => {
      await cancelGeneration(item.id, deps);
    });
    const last = page.items.at(-1);
    if (!page.more || !last) return;
    afterLine = batchOfId(last.id)?.line;
  }
}

/** The queue's standing, read at most once however many batches ask (undefined without admission). */
export function standingOnce(deps: GenerationsDeps): () => Promise<QueueStanding | undefined> {
  let read: Promise<QueueStanding> | undefined;
  return () => {
    if (!deps.admission) return Promise.resolve(undefined);
    read ??= deps.admission.queue.standing([]);
    return read;
  };
}

/**
 * A batch as the API shows it, with its completion estimated while it runs (`standing`: the
 * queue's, shared by the batches of one page).
 */
export async function viewOfBatch(
  batch: BatchRecord,
  deps: GenerationsDeps,
  standing = standingOnce(deps),
): Promise<BatchView> {
  const estimatedCompletionAt =
    batch.status === 'in_progress' || batch.status === 'cancelling'
      ? await estimateCompletion(batch, deps, standing)
      : undefined;
  return {
    id: batch.id,
    status: batch.status,
    source: batch.source,
    priority: batch.priority,
    createdAt: batch.createdAt,
    ...(batch.completedAt ? { completedAt: batch.completedAt } : {}),
    ...(estimatedCompletionAt ? { estimatedCompletionAt } : {}),
    counts: batch.counts,
    ...(batch.metadata ? { metadata: batch.metadata } : {}),
    ...(batch.file ? { file: { bucket: batch.file.bucket, key: batch.file.key } } : {}),
    links: batchLinksFor(batch.id),
  };
}

/**
 * When a batch's last generation is expected to end: its remaining lines at its fair share of its
 * lane, at the accounts' observed pace (`batchCompletionMs`, functions/shared/queue-estimate.ts,
 * the code the poll benchmark measures). One read of the queue's counters and the dispatcher's
 * state, whatever the batch's size. Undefined without admission.
 */
async function estimateCompletion(
  batch: BatchRecord,
  deps: GenerationsDeps,
  standingOf: () => Promise<QueueStanding | undefined>,
): Promise<string | undefined> {
  const { admission } = deps;
  if (!admission) return undefined;
  const { waiting, running } = batch.counts;
  if (waiting + running <= 0) return undefined;
  const standing = await standingOf();
  if (!standing) return undefined;
  const view = {
    now: deps.clock.now(),
    lanes: standing.lanes,
    state: standing.state,
    settings: admission.settings,
  };
  const { succeeded, partial, failed, canceled } = batch.counts;
  const endMs = batchCompletionMs(view, {
    lane: batch.priority,
    waiting,
    running,
    ended: succeeded + partial + failed + canceled,
    typicalRunSeconds: typicalRunSeconds(deps.runTimeModel ?? DEFAULT_RUN_TIME_MODEL),
  });
  return endMs === undefined ? undefined : new Date(endMs).toISOString();
}
