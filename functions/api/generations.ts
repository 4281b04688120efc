import { createHash } from 'node:crypto';
import {
  type AdmissionQueue,
  type AdmissionSettings,
  aheadIn,
  DEFAULT_LANE,
  entriesAheadOfNew,
  type Lane,
  type QueuePosition,
  type QueueStanding,
} from '../shared/admission.js';
import { type BatchIndex, batchOfId } from '../shared/batch.js';
import { canonicalJson } from '../shared/canonical-json.js';
import type { Clock } from '../shared/clock.js';
import type { DashScopeClient } from '../shared/dashscope/client.js';
import { describeError, WORKFLOW_ERROR } from '../shared/errors.js';
import { ExecutionAlreadyExistsError, type ExecutionService } from '../shared/execution-service.js';
import {
  FINAL_STAGE,
  type GenerationIndex,
  type GenerationRecord,
  type GenerationSource,
  RegistrationConflictError,
} from '../shared/generation-index.js';
import { type GenerationRequest, generationRequestSchema, type Model } from '../shared/generation-request.js';
import { failedUpdate } from '../shared/index-updates.js';
import type { Logger } from '../shared/logger.js';
import type { ObjectStore } from '../shared/object-store.js';
import type { Presigner } from '../shared/presigned-url.js';
import { queuePlace } from '../shared/queue-estimate.js';
import { DEFAULT_RUN_TIME_MODEL, estimateRun, type RunTimeModel } from '../shared/run-time-estimate.js';
import { withdrawFromQueue } from '../shared/slot-life.js';
import { stampedId } from '../shared/stamped-id.js';
import type { GenerationStatus } from '../shared/workflow-state.js';
import { decodeCursor, encodeCursor } from './cursor.js';
import type { GenerationView, ImageView } from './schemas.js';

export interface GenerationsDeps {
  /** Starts and stops executions; never read for a generation's state. */
  readonly executions: ExecutionService;
  /** The generations index: every read of the API is answered from it. */
  readonly index: GenerationIndex;
  /** Returns a presigned GET URL for an object key and when it stops working. */
  readonly presign: Presigner;
  /** Cancels PENDING DashScope tasks on cancel; optional (without it, only the execution stops). */
  readonly dashscope?: DashScopeClient;
  /**
   * Every configured DashScope account's client: a cancel reaches the task on the account that
   * runs it (the record's `dashscope.account`). @default `dashscope` for every task
   */
  readonly dashscopeAccounts?: { client(name?: string): DashScopeClient };
  readonly clock: Clock;
  readonly logger: Logger;
  /** @default `gen-<UTC timestamp>-<6 hex>` */
  readonly newId?: () => string;
  /**
   * The model of a request that names none (the deployment's `defaultModel`); the workflow fills
   * in the same for executions started without the API. @default the request schema's
   */
  readonly defaultModel?: Model;
  /** The admission queue: positions of waiting generations, and a cancel takes one out at once. */
  readonly admission?: {
    readonly queue: AdmissionQueue;
    readonly settings: AdmissionSettings;
  };
  /**
   * The run-time model Admit uses, for the start estimate of a generation Admit has not reached
   * yet (Admit stores its own estimate in the entry). @default DEFAULT_RUN_TIME_MODEL
   */
  readonly runTimeModel?: RunTimeModel;
  /** The batches, with where the API writes a batch's requests: the batch routes need all three. */
  readonly batches?: BatchIndex;
  readonly objects?: ObjectStore;
  readonly bucket?: string;
}

/** The same Idempotency-Key was used with a different body. */
export class IdempotencyConflictError extends Error {
  override readonly name = 'IdempotencyConflictError';
}

/** A new generation id: sortable by time, unique enough, valid as an execution name and S3 prefix. */
export const newGenerationId = (now: number): string => stampedId('gen', now, 3);

/** The execution name for an Idempotency-Key: a hash, so any printable key maps to a valid name. */
export function idempotentId(key: string): string {
  return `idem-${createHash('sha256').update(key).digest('base64url').slice(0, 32)}`;
}

export const linksFor = (id: string) => ({
  self: `/v1/generations/${id}`,
  cancel: `/v1/generations/${id}/cancel`,
});

interface Created {
  readonly id: string;
  readonly createdAt: string;
  readonly status: GenerationStatus;
  readonly replayed: boolean;
}

/** Who starts a generation through the API, and how it came (recorded as the generation's `source`). */
export interface CreateOptions {
  readonly idempotencyKey?: string;
  /** The IAM principal or JWT subject. */
  readonly caller?: string;
  /** `api` for an HTTP client, `cli` for `sd35`, `console` for the console's form. @default api */
  readonly source?: Extract<GenerationSource, 'api' | 'cli' | 'console'>;
}

/**
 * Starts a generation: registers it in the index (so a GET right after the answer finds it), then
 * starts its execution. With an idempotency key, the id is derived from the key: the same key and
 * body return the existing generation (`replayed`), the same key with another body throws
 * {@link IdempotencyConflictError}. Of concurrent requests with one key, the one whose
 * registration created the record starts the execution and is not `replayed`; every other is.
 */
export async function createGeneration(
  requested: GenerationRequest,
  options: CreateOptions,
  deps: GenerationsDeps,
): Promise<Created> {
  const { idempotencyKey } = options;
  const starter = { caller: options.caller, source: options.source ?? 'api' };
  // Through the API, a request is interactive unless it says otherwise: someone waits on it.
  const request = withApiLane(requested) as GenerationRequest;
  if (idempotencyKey) {
    const id = idempotentId(idempotencyKey);
    const existing = await deps.index.get(id);
    if (existing) return replay(existing, request);
    try {
      return await start(id, request, starter, deps, { replayable: true });
    } catch (error) {
      if (error instanceof RegistrationConflictError) {
        throw new IdempotencyConflictError(
          'This Idempotency-Key was already used with a different request body',
        );
      }
      throw error;
    }
  }
  // A fresh id has 24 random bits per second: on the rare clash, draw another.
  for (let attempt = 1; ; attempt++) {
    const id = (deps.newId ?? (() => newGenerationId(deps.clock.now())))();
    try {
      return await start(id, request, starter, deps, { replayable: false });
    } catch (error) {
      const clash =
        error instanceof RegistrationConflictError || error instanceof ExecutionAlreadyExistsError;
      if (!clash || attempt >= 3) throw error;
    }
  }
}

/**
 * Registers `id` and starts its execution. When the registration finds the record already there
 * (another request with the same Idempotency-Key got there first, maybe a moment ago and still
 * starting it), that one starts the execution and this one replays it; without a key the same id
 * is a clash, and a {@link RegistrationConflictError} has the caller draw another.
 */
async function start(
  id: string,
  request: GenerationRequest,
  starter: { caller?: string; source: GenerationSource },
  deps: GenerationsDeps,
  options: { replayable: boolean },
): Promise<Created> {
  const createdAt = new Date(deps.clock.now()).toISOString();
  const body = request as Record<string, unknown>;
  const { existing } = await deps.index.register({ id, createdAt, ...starter, request: body });
  if (existing) {
    if (!options.replayable) throw new RegistrationConflictError(`Generation ${id} exists`);
    return replay(existing, request);
  }
  try {
    await deps.executions.start(id, body);
  } catch (error) {
    if (error instanceof ExecutionAlreadyExistsError) {
      // The index had lost it, or another request raced us: the execution's input decides.
      const execution = await deps.executions.describe(id);
      const input = execution?.input;
      if (
        input &&
        typeof input === 'object' &&
        canonicalJson(withApiLane(input as Record<string, unknown>)) === canonicalJson(body)
      ) {
        return { id, createdAt, status: 'queued', replayed: true };
      }
      throw new IdempotencyConflictError(
        'This Idempotency-Key was already used with a different request body',
      );
    }
    // Nothing runs: say so in the index rather than leave a generation queued for ever.
    await deps.index
      .advance(
        failedUpdate(
          { id, request: body },
          { error: 'ExecutionStartFailed', cause: 'The workflow could not be started' },
          createdAt,
          new Date(deps.clock.now()).toISOString(),
        ),
      )
      .catch(() => undefined);
    throw error;
  }
  deps.logger.info('Generation started', { generationId: id, model: request.model, n: request.n });
  return { id, createdAt, status: 'queued', replayed: false };
}

/** A request as the API starts it: with its lane (records from before lanes have none: interactive). */
const withApiLane = (request: Record<string, unknown>) => ({
  ...request,
  priority: request.priority ?? DEFAULT_LANE.api,
});

function replay(existing: GenerationRecord, request: GenerationRequest): Created {
  if (!existing.request || canonicalJson(withApiLane(existing.request)) !== canonicalJson(request)) {
    throw new IdempotencyConflictError('This Idempotency-Key was already used with a different request body');
  }
  return { id: existing.id, createdAt: existing.createdAt, status: existing.status, replayed: true };
}

/** The generation named `id`, or undefined. Presigns its image URLs. */
export async function getGeneration(id: string, deps: GenerationsDeps): Promise<GenerationView | undefined> {
  const record = await deps.index.get(id);
  if (!record) return undefined;
  const view = await viewOf(record, deps, { presign: true });
  const [queue] = await queuePositions([record], deps);
  return queue ? { ...view, queue } : view;
}

/**
 * Where generations waiting for admission stand, one per record (undefined for those that do not
 * wait): the grants before each one's own (by the lane rules, with the queue as it is now), and
 * when its task is expected to start running, from when each account's runner is expected free
 * (as of the dispatcher's last grant) and each account's observed pace (the run-time estimate
 * before the dispatcher observed one). Undefined once it was granted or has a DashScope task, once
 * it ended, or without admission.
 *
 * One read for them all, whatever the queue's length: their entries, the lanes' counters and the
 * dispatcher's state (`AdmissionQueue.standing`); none at all when no record may wait.
 *
 * Admit writes the entry only when the execution reaches it, seconds after the 202. Until then a
 * generation registered `queued` with no task is shown as Admit will put it: in its lane's fair
 * order now (after the singles; a batch line, its line's rounds on: `entriesAheadOfNew`), with the
 * request's own run estimate.
 */
async function queuePositions(
  records: readonly GenerationRecord[],
  deps: GenerationsDeps,
): Promise<(QueuePosition | undefined)[]> {
  const { admission } = deps;
  const candidates = admission
    ? records.filter((record) => record.status === 'queued' && !record.dashscope?.taskId)
    : [];
  if (!admission || candidates.length === 0) return records.map(() => undefined);
  const standing = await admission.queue.standing(candidates.map((record) => record.id));
  return records.map((record) => {
    if (!candidates.includes(record)) return undefined;
    const entry = standing.records.get(record.id);
    if (entry?.kind === 'waiting') {
      const place = {
        lane: entry.lane,
        aheadInLane: aheadIn(standing.lanes[entry.lane], entry.seq),
        runSeconds: entry.expectedRunSeconds,
      };
      return placeInQueue(place, standing, admission.settings, deps.clock);
    }
    if (entry) return undefined;
    const expected = notYetAdmitted(record, admission.settings, deps);
    if (!expected) return undefined;
    // Where Admit will put it in its lane's fair order: after the singles, or its line's rounds on.
    const lane = standing.lanes[expected.lane];
    const round = standing.state.rounds?.[expected.lane];
    const place = {
      ...expected,
      aheadInLane: entriesAheadOfNew(lane, round, batchOfId(record.id)?.line),
    };
    return placeInQueue(place, standing, admission.settings, deps.clock);
  });
}

/**
 * The lane and run estimate Admit will give a generation it has not reached yet (the request's
 * `priority`, batch when it names none, as Admit decides), or undefined when it will not wait
 * for admission: its request does not parse (the workflow fails it first), or it is older than
 * `maxQueueSeconds` (its entry was failed with QueueTimeExceeded; the index says so a moment later).
 */
function notYetAdmitted(
  record: GenerationRecord,
  settings: AdmissionSettings,
  deps: Pick<GenerationsDeps, 'clock' | 'runTimeModel'>,
): { lane: Lane; runSeconds: number } | undefined {
  const request = generationRequestSchema.safeParse(record.request);
  if (!request.success) return undefined;
  const age = deps.clock.now() - Date.parse(record.createdAt);
  if (age >= settings.maxQueueSeconds * 1000) return undefined;
  return {
    lane: request.data.priority ?? DEFAULT_LANE.other,
    runSeconds: estimateRun(request.data, deps.runTimeModel ?? DEFAULT_RUN_TIME_MODEL).seconds,
  };
}

/**
 * A place in `lane` behind `aheadInLane` entries: its position by the lane rules and its start at
 * the accounts' observed pace (functions/shared/queue-estimate.ts, which the poll benchmark measures).
 */
function placeInQueue(
  place: { lane: Lane; aheadInLane: number; runSeconds: number },
  standing: QueueStanding,
  settings: AdmissionSettings,
  clock: Clock,
): QueuePosition {
  return queuePlace({ now: clock.now(), lanes: standing.lanes, state: standing.state, settings }, place);
}

/**
 * One page of generations, newest first, from the index (a status filter reads the status
 * index). A page holds `limit` items unless nothing more matches, and then it has no cursor.
 * `presign` adds the image links (the console's gallery shows them). @default presign false
 * @throws InvalidCursorError for a cursor this API did not issue for this filter
 */
export async function listGenerations(
  query: { status?: GenerationStatus; limit: number; cursor?: string },
  deps: GenerationsDeps,
  options: { presign: boolean } = { presign: false },
): Promise<{ data: GenerationView[]; nextCursor?: string }> {
  const after = query.cursor ? decodeCursor(query.cursor, query.status) : undefined;
  const page = await deps.index.list({ status: query.status, limit: query.limit, after });
  const data = await listGenerationViews(page.items, deps, options);
  const last = page.items.at(-1);
  return {
    data,
    ...(page.more && last ? { nextCursor: encodeCursor(query.status, last) } : {}),
  };
}

/** Records as a list shows them, each waiting one with its place (one read for them all). */
export async function listGenerationViews(
  records: readonly GenerationRecord[],
  deps: GenerationsDeps,
  options: { presign: boolean } = { presign: false },
): Promise<GenerationView[]> {
  const [views, queues] = await Promise.all([
    Promise.all(records.map((record) => viewOf(record, deps, options))),
    // Each waiting generation's place, as its GET shows it: one read for the page.
    queuePositions(records, deps),
  ]);
  return views.map((view, i) => {
    const queue = queues[i];
    return queue ? { ...view, queue } : view;
  });
}

/**
 * Cancels a generation: stops the execution, cancels the DashScope task if it was still PENDING
 * (a RUNNING task cannot be cancelled and finishes unobserved), and records it `canceled`.
 * Repeating it is harmless: a generation that already ended is returned as it is.
 */
export async function cancelGeneration(
  id: string,
  deps: GenerationsDeps,
): Promise<GenerationView | undefined> {
  const record = await deps.index.get(id);
  if (!record) return undefined;
  if (record.stage >= FINAL_STAGE) return viewOf(record, deps, { presign: false });

  const reason = { error: WORKFLOW_ERROR.taskCanceled, cause: 'Canceled through the API' };
  // Out of the queue first (no grant can reach it after this), then stopped.
  await withdrawFromQueue(deps.admission?.queue, id);
  await deps.executions.stop(id, reason);
  const task = record.dashscope;
  if (task?.status === 'PENDING' && task.taskId && (deps.dashscopeAccounts || deps.dashscope)) {
    try {
      const client = deps.dashscopeAccounts?.client(task.account) ?? deps.dashscope;
      await client?.cancel(task.taskId);
    } catch (error) {
      // It may have started meanwhile; the execution is stopped either way.
      deps.logger.info('DashScope task not cancelled', {
        generationId: id,
        taskId: task.taskId,
        reason: describeError(error),
      });
    }
  }
  // The reconciler records the same on the execution's ABORTED event; this makes it visible now.
  await deps.index.advance(
    failedUpdate(
      { id, request: record.request },
      reason,
      record.createdAt,
      new Date(deps.clock.now()).toISOString(),
    ),
  );
  deps.logger.info('Generation canceled', { generationId: id });
  const after = (await deps.index.get(id)) ?? record;
  return viewOf(after, deps, { presign: false });
}

/**
 * An image with its presigned link, and its thumbnail's when it has one. Both links share one
 * `expiresAt`, the earlier of the two, so it is true of both.
 */
async function presignImage(
  image: NonNullable<GenerationRecord['images']>[number],
  presign: Presigner,
): Promise<ImageView> {
  const { thumbnail, ...stored } = image;
  const [full, small] = await Promise.all([
    presign(image.key),
    thumbnail ? presign(thumbnail.key) : undefined,
  ]);
  if (!small || !thumbnail) return { ...stored, ...full };
  // Both ISO 8601 UTC of one form: the earlier sorts first.
  const expiresAt = [full.expiresAt, small.expiresAt].sort()[0] ?? full.expiresAt;
  return { ...stored, url: full.url, expiresAt, thumbnailUrl: small.url, thumbnail };
}

/** A record as the API shows it; image URLs are presigned only when one generation is asked for. */
async function viewOf(
  record: GenerationRecord,
  deps: GenerationsDeps,
  options: { presign: boolean },
): Promise<GenerationView> {
  const request = generationRequestSchema.safeParse(record.request);
  const images =
    options.presign && record.images
      ? await Promise.all(record.images.map((image) => presignImage(image, deps.presign)))
      : undefined;
  const total = record.progress?.total ?? (request.success ? request.data.n : 0);
  // id and status first: what a human reading the JSON looks for.
  return {
    id: record.id,
    status: record.status,
    createdAt: record.createdAt,
    endedAt: record.endedAt,
    source: record.source,
    request: request.success ? request.data : undefined,
    progress: {
      done: record.progress?.done ?? 0,
      failed: record.progress?.failed ?? 0,
      total,
    },
    dashscope: {
      account: record.dashscope?.account,
      taskId: record.dashscope?.taskId,
      submitTime: record.dashscope?.submitTime,
      scheduledTime: record.dashscope?.scheduledTime,
      endTime: record.dashscope?.endTime,
    },
    images,
    failedImages: record.failedImages?.length ? record.failedImages : undefined,
    manifestKey: record.manifestKey,
    error: record.error,
    links: linksFor(record.id),
  };
}
