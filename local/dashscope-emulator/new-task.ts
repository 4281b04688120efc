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
    omitResults: new Set(plan?.omitResults ?? []),
    fail: plan?.fail ? { ...plan.fail } : undefined,
    files: Array.from({ length: request.n }, () => `${randomUUID()}.png`),
    downloadFaults: new Map(
      Object.entries(plan?.downloadFaults ?? {}).map(([index, faults]) => [Number(index), [...faults]]),
    ),
    resultOrigins: new Map(
      Object.entries(plan?.resultOrigins ?? {}).map(([index, origin]) => [Number(index), origin]),
    ),
    scheduledAt: undefined,
    canceledAt: undefined,
  };
}

/** Checks a plan up front, so a typo in a test fails at the call rather than at some later submit. */
export function checkPlan(plan: TaskPlan): TaskPlan {
  const { durationMs, failImages, omitResults, downloadFaults, resultOrigins } = plan;
  if (durationMs !== undefined && !(durationMs >= 0)) {
    throw new RangeError(`durationMs must be a number >= 0 (Infinity: never ends), got ${durationMs}`);
  }
  if (failImages?.some((index) => !Number.isInteger(index))) {
    throw new RangeError(`failImages must hold integer indexes, got ${failImages.join(', ')}`);
  }
  if (omitResults?.some((index) => !Number.isInteger(index))) {
    throw new RangeError(`omitResults must hold integer indexes, got ${omitResults.join(', ')}`);
  }
  for (const faults of Object.values(downloadFaults ?? {})) {
    for (const fault of faults) {
      if ('kind' in fault && fault.kind === 'trickle' && !(fault.bytesPerSecond > 0)) {
        throw new RangeError(`trickle bytesPerSecond must be a number > 0, got ${fault.bytesPerSecond}`);
      }
    }
  }
  for (const key of [...Object.keys(downloadFaults ?? {}), ...Object.keys(resultOrigins ?? {})]) {
    if (!/^\d+$/.test(key)) throw new RangeError(`image indexes must be integers >= 0, got ${key}`);
  }
  for (const origin of Object.values(resultOrigins ?? {})) {
    if (!URL.canParse(origin)) throw new RangeError(`resultOrigins must hold URL origins, got ${origin}`);
  }
  return {
    ...plan,
    failImages: failImages ? [...failImages] : undefined,
    omitResults: omitResults ? [...omitResults] : undefined,
    downloadFaults: downloadFaults
      ? Object.fromEntries(Object.entries(downloadFaults).map(([index, faults]) => [index, [...faults]]))
      : undefined,
  };
}
