import { createHash, randomBytes } from 'node:crypto';
import { canonicalJson } from '../shared/canonical-json.js';
import type { Clock } from '../shared/clock.js';
import type { DashScopeClient } from '../shared/dashscope/client.js';
import { describeError, WORKFLOW_ERROR } from '../shared/errors.js';
import { failureView, statusOfError } from '../shared/failure.js';
import {
  type GenerationRequest,
  generationRequestSchema,
  type Model,
  withDefaultModel,
} from '../shared/generation-request.js';
import type { Logger } from '../shared/logger.js';
import {
  type GenerationStatus,
  type PersistResult,
  persistResultSchema,
  type TaskState,
  taskStateSchema,
} from '../shared/workflow-state.js';
import {
  ExecutionAlreadyExistsError,
  type ExecutionRecord,
  type ExecutionService,
  type ExecutionStatus,
  InvalidPageTokenError,
} from './execution-service.js';
import type { PresignedUrl } from './presign.js';
import type { GenerationView } from './schemas.js';

export interface GenerationsDeps {
  readonly executions: ExecutionService;
  /** Returns a presigned GET URL for an object key and when it stops working. */
  readonly presign: (key: string) => Promise<PresignedUrl>;
  /** Cancels PENDING DashScope tasks on cancel; optional (without it, only the execution stops). */
  readonly dashscope?: DashScopeClient;
  readonly clock: Clock;
  readonly logger: Logger;
  /** @default `gen-<UTC timestamp>-<6 hex>` */
  readonly newId?: () => string;
  /**
   * The model of a request that names none (the deployment's `defaultModel`); the workflow fills
   * in the same for executions started without the API. @default the request schema's
   */
  readonly defaultModel?: Model;
}

/** The same Idempotency-Key was used with a different body. */
export class IdempotencyConflictError extends Error {
  override readonly name = 'IdempotencyConflictError';
}

/** A new generation id: sortable by time, unique enough, valid as an execution name and S3 prefix. */
export function newGenerationId(now: number): string {
  const stamp = new Date(now)
    .toISOString()
    .replace(/[-:.TZ]/g, '')
    .slice(0, 14);
  return `gen-${stamp}-${randomBytes(3).toString('hex')}`;
}

/** The execution name for an Idempotency-Key: a hash, so any printable key maps to a valid name. */
export function idempotentId(key: string): string {
  return `idem-${createHash('sha256').update(key).digest('base64url').slice(0, 32)}`;
}

export const linksFor = (id: string) => ({
  self: `/v1/generations/${id}`,
  cancel: `/v1/generations/${id}/cancel`,
});

/**
 * Starts a generation. With an idempotency key, the execution name is derived from the key, so
 * Step Functions itself refuses a second execution: the same key and body return the existing
 * generation (`replayed`), the same key with another body throws {@link IdempotencyConflictError}.
 */
export async function createGeneration(
  request: GenerationRequest,
  idempotencyKey: string | undefined,
  deps: GenerationsDeps,
): Promise<{ id: string; createdAt: string; status: GenerationStatus; replayed: boolean }> {
  if (idempotencyKey) {
    const id = idempotentId(idempotencyKey);
    // Step Functions answers a repeated start of a running execution as if it were new: look first.
    const existing = await deps.executions.describe(id);
    if (existing) return replay(existing, request, deps);
    try {
      return await start(id, request, deps);
    } catch (error) {
      const raced =
        error instanceof ExecutionAlreadyExistsError ? await deps.executions.describe(id) : undefined;
      if (!raced) throw error;
      return replay(raced, request, deps);
    }
  }
  // A fresh id has 24 random bits per second: on the rare clash, draw another.
  for (let attempt = 1; ; attempt++) {
    const id = (deps.newId ?? (() => newGenerationId(deps.clock.now())))();
    try {
      return await start(id, request, deps);
    } catch (error) {
      if (!(error instanceof ExecutionAlreadyExistsError) || attempt >= 3) throw error;
    }
  }
}

async function start(id: string, request: GenerationRequest, deps: GenerationsDeps) {
  await deps.executions.start(id, request);
  deps.logger.info('Generation started', { generationId: id, model: request.model, n: request.n });
  return {
    id,
    createdAt: new Date(deps.clock.now()).toISOString(),
    status: 'queued' as const,
    replayed: false,
  };
}

async function replay(existing: ExecutionRecord, request: GenerationRequest, deps: GenerationsDeps) {
  if (canonicalJson(existing.input) !== canonicalJson(request)) {
    throw new IdempotencyConflictError('This Idempotency-Key was already used with a different request body');
  }
  const view = await viewOf(existing, deps, { presign: false });
  return { id: existing.name, createdAt: view.createdAt, status: view.status, replayed: true };
}

/** The generation named `id`, or undefined. Presigns image URLs once it succeeded. */
export async function getGeneration(id: string, deps: GenerationsDeps): Promise<GenerationView | undefined> {
  const record = await deps.executions.describe(id);
  return record ? viewOf(record, deps, { presign: true }) : undefined;
}

/** Which execution statuses can hold a generation of each API status. */
const EXECUTION_STATUS_FOR: Record<GenerationStatus, ExecutionStatus | undefined> = {
  queued: 'RUNNING',
  running: 'RUNNING',
  succeeded: 'SUCCEEDED',
  failed: undefined,
  canceled: undefined,
  expired: 'FAILED',
};

/**
 * One page of generations, newest first. A status filter narrows the executions listed when it
 * maps to one execution status, then filters the views (so a page may hold fewer than `limit`).
 */
export async function listGenerations(
  query: { status?: GenerationStatus; limit: number; cursor?: string },
  deps: GenerationsDeps,
): Promise<{ data: GenerationView[]; nextCursor?: string }> {
  const page = await deps.executions.list({
    status: query.status ? EXECUTION_STATUS_FOR[query.status] : undefined,
    limit: query.limit,
    nextToken: query.cursor ? decodeCursor(query.cursor) : undefined,
  });
  const views: GenerationView[] = [];
  for (const item of page.items) {
    const record = await deps.executions.describe(item.name);
    if (!record) continue;
    const view = await viewOf(record, deps, { presign: false });
    if (!query.status || view.status === query.status) views.push(view);
  }
  return { data: views, nextCursor: page.nextToken ? encodeCursor(page.nextToken) : undefined };
}

/**
 * Cancels a generation: stops the execution, then cancels the DashScope task if it was still
 * PENDING (a RUNNING task cannot be cancelled and finishes unobserved). Repeating it is harmless:
 * a generation that already ended is returned as it is.
 */
export async function cancelGeneration(
  id: string,
  deps: GenerationsDeps,
): Promise<GenerationView | undefined> {
  const record = await deps.executions.describe(id);
  if (!record) return undefined;
  if (record.status !== 'RUNNING') return viewOf(record, deps, { presign: false });

  const last = await deps.executions.lastTaskState(id);
  await deps.executions.stop(id, { error: WORKFLOW_ERROR.taskCanceled, cause: 'Canceled through the API' });
  if (last && last.dashscopeStatus === 'PENDING' && deps.dashscope) {
    try {
      await deps.dashscope.cancel(last.taskId);
    } catch (error) {
      // It may have started meanwhile; the execution is stopped either way.
      deps.logger.info('DashScope task not cancelled', {
        generationId: id,
        taskId: last.taskId,
        reason: describeError(error),
      });
    }
  }
  deps.logger.info('Generation canceled', { generationId: id });
  const after = (await deps.executions.describe(id)) ?? record;
  return viewOf(after, deps, { presign: false });
}

async function viewOf(
  record: ExecutionRecord,
  deps: GenerationsDeps,
  options: { presign: boolean },
): Promise<GenerationView> {
  // id and status first: what a human reading the JSON looks for.
  const { id, status, ...rest } = await unorderedViewOf(record, deps, options);
  return { id, status, ...rest };
}

/** The error of a closed execution that did not succeed. */
function failureOf(record: ExecutionRecord, task: TaskState | undefined): GenerationView['error'] {
  if (record.status === 'ABORTED') return { type: 'canceled', message: 'The generation was canceled' };
  if (record.status === 'TIMED_OUT') return { type: 'timeout', message: 'The workflow timed out' };
  return failureView(record.error ?? 'Error', record.cause, task);
}

async function unorderedViewOf(
  record: ExecutionRecord,
  deps: GenerationsDeps,
  options: { presign: boolean },
): Promise<GenerationView> {
  const request = generationRequestSchema.safeParse(withDefaultModel(record.input, deps.defaultModel));
  const total = request.success ? request.data.n : 0;
  const output = record.output as { task?: unknown; result?: unknown } | undefined;
  const finalTask = taskStateSchema.safeParse(output?.task);
  const task =
    record.status === 'RUNNING' || record.status === 'FAILED' || !finalTask.success
      ? await deps.executions.lastTaskState(record.name)
      : finalTask.data;
  const base = {
    id: record.name,
    createdAt: record.startDate.toISOString(),
    endedAt: record.stopDate?.toISOString(),
    request: request.success ? request.data : undefined,
    dashscope: {
      taskId: task?.taskId,
      submitTime: task?.times.submit,
      scheduledTime: task?.times.scheduled,
      endTime: task?.times.end,
    },
    links: linksFor(record.name),
  };

  if (record.status === 'SUCCEEDED') {
    const result = persistResultSchema.safeParse(output?.result);
    if (result.success) return { ...base, ...(await successParts(result.data, total, deps, options)) };
  }
  if (record.status === 'RUNNING' || record.status === 'PENDING_REDRIVE') {
    const status: GenerationStatus =
      task?.status === 'running' || task?.status === 'succeeded' ? 'running' : 'queued';
    return {
      ...base,
      status,
      progress: { done: task?.progress?.succeeded ?? 0, failed: task?.progress?.failed ?? 0, total },
    };
  }
  const error = failureOf(record, task);
  return {
    ...base,
    status: record.status === 'ABORTED' ? 'canceled' : statusOfError(record.error),
    progress: { done: 0, failed: task?.progress?.failed ?? 0, total },
    error,
  };
}

/** Success fields; image URLs are presigned only when one generation is asked for, not in lists. */
async function successParts(
  result: PersistResult,
  total: number,
  deps: GenerationsDeps,
  options: { presign: boolean },
) {
  const images = options.presign
    ? await Promise.all(
        result.images.map(async (image) => ({ ...image, ...(await deps.presign(image.key)) })),
      )
    : undefined;
  return {
    status: 'succeeded' as const,
    progress: { done: result.images.length, failed: result.failed.length, total },
    images,
    failedImages: result.failed.length > 0 ? result.failed : undefined,
    manifestKey: result.manifestKey,
  };
}

const encodeCursor = (token: string) => Buffer.from(token, 'utf8').toString('base64url');
/** Step Functions' page tokens are 1–1024 characters: anything else was not issued by us. */
function decodeCursor(cursor: string): string {
  const token = Buffer.from(cursor, 'base64url').toString('utf8');
  if (token.length === 0 || token.length > 1024) throw new InvalidPageTokenError('Unknown page token');
  return token;
}
