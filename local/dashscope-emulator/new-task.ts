import { randomInt, randomUUID } from 'node:crypto';
import { runTimeMs } from './run-time.js';
import { MAX_SEED, type SubmitRequest } from './submit-request.js';
import type { TaskRecord } from './task-record.js';
import type { TaskPlan } from './types.js';

/** What the record of an accepted submit is made of. */
export interface NewTaskInput {
  request: SubmitRequest;
  plan: TaskPlan | undefined;
  submittedAt: number;
  requestId: string;
  speed: number;
}

/**
 * The record of an accepted submit: a random seed when none was given (as the service does), the
 * run time from the plan or the formula, and one result file name per image.
 */
export function createTaskRecord(input: NewTaskInput): TaskRecord {
  const { request, plan } = input;
  const seed = request.seed ?? randomInt(0, MAX_SEED + 1);
  return {
    taskId: randomUUID(),
    requestId: input.requestId,
    request: { ...request, seed },
    submittedAt: input.submittedAt,
    durationMs: plan?.durationMs ?? runTimeMs(request, input.speed),
    failImages: new Set(plan?.failImages ?? []),
    fail: plan?.fail ? { ...plan.fail } : undefined,
    files: Array.from({ length: request.n }, () => `${randomUUID()}.png`),
    scheduledAt: undefined,
    canceledAt: undefined,
  };
}

/** Checks a plan up front, so a typo in a test fails at the call rather than at some later submit. */
export function checkPlan(plan: TaskPlan): TaskPlan {
  const { durationMs, failImages } = plan;
  if (durationMs !== undefined && !(Number.isFinite(durationMs) && durationMs >= 0)) {
    throw new RangeError(`durationMs must be a finite number >= 0, got ${durationMs}`);
  }
  if (failImages?.some((index) => !Number.isInteger(index))) {
    throw new RangeError(`failImages must hold integer indexes, got ${failImages.join(', ')}`);
  }
  return { ...plan, failImages: failImages ? [...failImages] : undefined };
}
