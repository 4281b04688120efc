import type { SubmitRequest } from './submit-request.js';
import type { DownloadFault, TaskError, TaskSnapshot, TaskStatus } from './types.js';

/** The error a failed image reports, as in the seed document's partial-failure example. */
export const IMAGE_TIMEOUT: TaskError = {
  code: 'InternalError.Timeout',
  message:
    'An internal timeout error has occured during execution, please try again later or contact service support.',
};

/** Everything the emulator keeps about one task. Only the scheduler mutates the two times. */
export interface TaskRecord {
  readonly taskId: string;
  /** Request id of the submit call, echoed by the list API. */
  readonly requestId: string;
  readonly request: SubmitRequest & { seed: number };
  readonly submittedAt: number;
  readonly durationMs: number;
  readonly failImages: ReadonlySet<number>;
  /** Images the query's `results` leave out although they were produced (see `TaskPlan.omitResults`). */
  readonly omitResults: ReadonlySet<number>;
  readonly fail: TaskError | undefined;
  /** Result file name of each image, in order. */
  readonly files: readonly string[];
  /** Scripted download faults still to answer, by image index (each download takes the first). */
  readonly downloadFaults: ReadonlyMap<number, DownloadFault[]>;
  /** Origins that result URLs point at instead of the emulator's, by image index. */
  readonly resultOrigins: ReadonlyMap<number, string>;
  /** Set when the task takes the runner; it then ends at `scheduledAt + durationMs`. */
  scheduledAt: number | undefined;
  /** Set when the task is canceled while PENDING. */
  canceledAt: number | undefined;
}

/** Per-batch counters, named as the API names them. */
export interface TaskMetrics {
  TOTAL: number;
  SUCCEEDED: number;
  FAILED: number;
}

/** State of a known task at `now` (UNKNOWN is decided by whoever holds the records). */
export function statusAt(record: TaskRecord, now: number): Exclude<TaskStatus, 'UNKNOWN'> {
  if (record.canceledAt !== undefined) return 'CANCELED';
  if (record.scheduledAt === undefined) return 'PENDING';
  if (now < record.scheduledAt + record.durationMs) return 'RUNNING';
  return taskFailure(record) ? 'FAILED' : 'SUCCEEDED';
}

/** When the run ends (or ended), once the task has taken the runner. */
export function runEndOf(record: TaskRecord): number | undefined {
  return record.scheduledAt === undefined ? undefined : record.scheduledAt + record.durationMs;
}

/** When the task reached a terminal state, if it has by `now`. */
export function endTimeAt(record: TaskRecord, now: number): number | undefined {
  if (record.canceledAt !== undefined) return record.canceledAt;
  const end = runEndOf(record);
  return end !== undefined && end <= now ? end : undefined;
}

/**
 * When the record disappears: `ttlMs` after the end, or after the submit for a task still queued.
 * A running task always ends first, so it does not expire.
 */
export function expiresAt(record: TaskRecord, now: number, ttlMs: number): number {
  const end = endTimeAt(record, now);
  if (end !== undefined) return end + ttlMs;
  return record.scheduledAt === undefined ? record.submittedAt + ttlMs : Number.POSITIVE_INFINITY;
}

/** The whole-task error, if the task fails: the planned one, or the image error when none succeeds. */
export function taskFailure(record: TaskRecord): TaskError | undefined {
  if (record.fail) return record.fail;
  const everyImageFails = record.files.every((_, index) => record.failImages.has(index));
  return everyImageFails ? IMAGE_TIMEOUT : undefined;
}

/** Whether image `index` is (or will be) produced. */
export function imageSucceeds(record: TaskRecord, index: number): boolean {
  return !record.fail && !record.failImages.has(index);
}

/**
 * Batch counters at `now`: images finish one by one, evenly spaced over the run, and the last one
 * finishes exactly when the task ends.
 */
export function metricsAt(record: TaskRecord, now: number): TaskMetrics {
  const total = record.files.length;
  const done = imagesDoneAt(record, now);
  let succeeded = 0;
  for (let index = 0; index < done; index += 1) {
    if (imageSucceeds(record, index)) succeeded += 1;
  }
  return { TOTAL: total, SUCCEEDED: succeeded, FAILED: done - succeeded };
}

function imagesDoneAt(record: TaskRecord, now: number): number {
  const total = record.files.length;
  if (record.scheduledAt === undefined || record.canceledAt !== undefined) return 0;
  const elapsed = now - record.scheduledAt;
  if (elapsed >= record.durationMs) return total;
  return Math.min(total - 1, Math.floor((elapsed * total) / record.durationMs));
}

/** The read-only view handed to tests. */
export function snapshotAt(record: TaskRecord, now: number): TaskSnapshot {
  const { request } = record;
  return {
    taskId: record.taskId,
    status: statusAt(record, now),
    model: request.model,
    prompt: request.prompt,
    negativePrompt: request.negativePrompt,
    initImage: request.initImage,
    width: request.width,
    height: request.height,
    n: request.n,
    steps: request.steps,
    cfg: request.cfg,
    seed: request.seed,
    shift: request.shift,
    durationMs: record.durationMs,
    submittedAt: record.submittedAt,
    scheduledAt: record.scheduledAt,
    endedAt: endTimeAt(record, now),
  };
}
