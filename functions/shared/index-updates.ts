import * as z from 'zod';
import { describeError } from './errors.js';
import { failureView, statusOfError } from './failure.js';
import {
  FINAL_STAGE,
  type GenerationIndex,
  type GenerationRecord,
  type GenerationSource,
  type GenerationUpdate,
  STAGE,
  stageOfPoll,
} from './generation-index.js';
import { generationRequestSchema } from './generation-request.js';
import type { Logger } from './logger.js';
import {
  type PersistResult,
  persistResultSchema,
  type TaskState,
  taskStateSchema,
} from './workflow-state.js';

/**
 * How each writer turns what it holds (a task state, the final state, an execution) into an
 * update of the generations index. Pure: the handlers write what these return.
 */

/**
 * The source of a generation, from its id: the API names generations `gen-…` (or `idem-…` for an
 * Idempotency-Key) and a batch's `batch-…-<line>`, the trigger a request file's lines
 * `file-…-<line>` (`req-…` before batches), `evt-…` (events) and `sch-…` (schedules). Any other
 * name was given by whoever called StartExecution directly.
 */
export function sourceOfId(id: string): GenerationSource {
  if (/^(gen|idem|batch)-/.test(id)) return 'api';
  if (/^(file|req)-/.test(id)) return 'request-file';
  if (id.startsWith('evt-')) return 'event';
  if (id.startsWith('sch-')) return 'schedule';
  return 'direct';
}

/** The request as the index keeps it: parsed (defaults applied) when it parses, else absent. */
export function indexedRequest(request: unknown): Record<string, unknown> | undefined {
  const parsed = generationRequestSchema.safeParse(request);
  return parsed.success ? (parsed.data as Record<string, unknown>) : undefined;
}

const totalOf = (request: unknown) => generationRequestSchema.safeParse(request).data?.n ?? 0;

function dashscopeOf(task: TaskState): NonNullable<GenerationRecord['dashscope']> {
  return {
    ...(task.account ? { account: task.account } : {}),
    taskId: task.taskId,
    status: task.dashscopeStatus,
    submittedAt: task.submittedAt,
    submitTime: task.times.submit,
    scheduledTime: task.times.scheduled,
    endTime: task.times.end,
  };
}

/** The execution's start as the workflow passes it (`$$.Execution.StartTime`), read leniently. */
export const startedAtSchema = z.object({ startedAt: z.iso.datetime({ offset: true }).optional() }).catch({});

/**
 * After Submit or a Poll: the generation is queued or running (a task that succeeded is still
 * `running` while Persist stores its images; an ended task is written by Notify with its reason).
 */
export function taskUpdate(
  state: { id: string; request: unknown },
  task: TaskState,
  createdAt: string,
): GenerationUpdate {
  const running = task.status === 'running' || task.status === 'succeeded';
  return {
    id: state.id,
    stage: task.pollCount === 0 ? STAGE.submitted : stageOfPoll(task.pollCount),
    status: running ? 'running' : 'queued',
    createdAt,
    source: sourceOfId(state.id),
    request: indexedRequest(state.request),
    progress: {
      done: task.progress?.succeeded ?? 0,
      failed: task.progress?.failed ?? 0,
      total: task.progress?.total ?? totalOf(state.request),
    },
    dashscope: dashscopeOf(task),
  };
}

/** Whether a poll changed what the index shows: the status, DashScope's status or the progress. */
export function changesWhatIsShown(before: TaskState, after: TaskState): boolean {
  return (
    before.status !== after.status ||
    before.dashscopeStatus !== after.dashscopeStatus ||
    JSON.stringify(before.progress ?? null) !== JSON.stringify(after.progress ?? null) ||
    JSON.stringify(before.times) !== JSON.stringify(after.times)
  );
}

/** The end of a generation that stored images (Notify after Persist, or the reconciler). */
export function succeededUpdate(
  state: { id: string; request: unknown; task?: unknown; result: PersistResult },
  createdAt: string,
  endedAt: string,
): GenerationUpdate {
  const task = taskStateSchema.safeParse(state.task);
  const { result } = state;
  return {
    id: state.id,
    stage: FINAL_STAGE,
    status: 'succeeded',
    createdAt,
    source: sourceOfId(state.id),
    request: indexedRequest(state.request),
    progress: {
      done: result.images.length,
      failed: result.failed.length,
      total: totalOf(state.request) || result.images.length + result.failed.length,
    },
    ...(task.success ? { dashscope: dashscopeOf(task.data) } : {}),
    images: result.images.map(({ index, key, bytes, sha256, contentType, seed, thumbnail }) => ({
      index,
      key,
      bytes,
      sha256,
      contentType,
      seed,
      ...(thumbnail ? { thumbnail } : {}),
    })),
    failedImages: result.failed,
    manifestKey: result.manifestKey,
    endedAt,
  };
}

/** The end of a generation that failed, was canceled or expired, from its error name and cause. */
export function failedUpdate(
  state: { id: string; request: unknown; task?: unknown },
  failure: { error: string; cause?: string },
  createdAt: string,
  endedAt: string,
): GenerationUpdate {
  const task = taskStateSchema.safeParse(state.task);
  const taskState = task.success ? task.data : undefined;
  return {
    id: state.id,
    stage: FINAL_STAGE,
    status: statusOfError(failure.error),
    createdAt,
    source: sourceOfId(state.id),
    request: indexedRequest(state.request),
    // Without the last task state (the reconciler), keep whatever progress a poll recorded.
    ...(taskState
      ? {
          progress: { done: 0, failed: taskState.progress?.failed ?? 0, total: totalOf(state.request) },
          dashscope: dashscopeOf(taskState),
        }
      : {}),
    error: failureView(failure.error, failure.cause, taskState),
    endedAt,
  };
}

/** The final update of Notify's input: succeeded with its result, or failed with its failure. */
export function finalUpdateOfState(
  outcome: 'succeeded' | 'failed',
  state: {
    id: string;
    request: unknown;
    task?: unknown;
    result?: unknown;
    failure?: { Error: string; Cause?: string };
  },
  createdAt: string,
  endedAt: string,
): GenerationUpdate {
  const result = persistResultSchema.safeParse(state.result);
  if (outcome === 'succeeded' && result.success) {
    return succeededUpdate({ ...state, result: result.data }, createdAt, endedAt);
  }
  return failedUpdate(
    state,
    { error: state.failure?.Error ?? 'Error', cause: state.failure?.Cause },
    createdAt,
    endedAt,
  );
}

/**
 * Writes an update, never throwing: a failed index write must not change the generation's
 * course (a retried Submit could start a second paid task). The reconciler converges the index on
 * the execution's end. Returns whether the write was applied.
 */
export async function writeIndexSafely(
  index: GenerationIndex,
  update: GenerationUpdate,
  logger: Logger,
  onFailure?: () => void,
): Promise<boolean> {
  try {
    return await index.advance(update);
  } catch (error) {
    logger.warn('Generations index not updated', {
      generationId: update.id,
      stage: update.stage,
      reason: describeError(error),
    });
    onFailure?.();
    return false;
  }
}
