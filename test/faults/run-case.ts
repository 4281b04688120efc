import { expect } from 'vitest';
import type { Manifest } from '../../functions/persist/manifest.js';
import { DETAIL_TYPE } from '../../functions/shared/events.js';
import { renderPng } from '../../local/dashscope-emulator/png.js';
import type { ExecutionOutput } from '../../local/runner.js';
import type { FaultCase } from './cases.js';
import { type FaultSuite, SUITE_CONFIG } from './harness.js';
import {
  checkFailure,
  checkImageFailures,
  checkManifest,
  checkNoDuplicates,
  checkNoErrorLogs,
  type FailureSeen,
  imageIndexOf,
  type LogLine,
  type StoredObject,
  storedObjects,
} from './invariants.js';

/** What a case's hooks see. */
export interface CaseContext {
  readonly suite: FaultSuite;
  /** The generation id: execution name and S3 prefix. */
  readonly id: string;
  readonly request: { prompt: string; n: number; size: string; seed: number; webhook_url?: string };
}

/** What one case did, read back from the workflow, the emulator and S3. */
export interface Observation {
  readonly status: 'succeeded' | 'failed';
  readonly output?: ExecutionOutput;
  readonly error?: string;
  readonly failure?: FailureSeen;
  readonly manifest?: Manifest;
  readonly objects: ReadonlyMap<string, StoredObject>;
  readonly tasks: number;
  readonly calls: { submit: number; download: number; cancel: number };
  /** Lambda failures by `"<state> <error name>"`. */
  readonly lambdaErrors: Record<string, number>;
  readonly logs: readonly LogLine[];
}

/** The S3 prefix of a generation. */
export const prefixOf = (id: string) => `generations/${id}/`;

/**
 * Runs one case through the synthesized workflow and checks its expected end, then the four
 * invariants: manifests match the stored bytes, no image is stored twice, every failure carries a
 * stable type and the upstream code, and no ERROR is logged. `seen` spans the whole suite.
 */
export async function runCase(
  suite: FaultSuite,
  fault: FaultCase,
  index: number,
  seen: Map<string, string>,
): Promise<Observation> {
  const id = `fault-${String(index + 1).padStart(2, '0')}`;
  const request = {
    prompt: `fault matrix case ${index + 1}: ${fault.fault}`,
    n: fault.n ?? 2,
    size: SUITE_CONFIG.size,
    seed: 1000 + 10 * index,
    ...(fault.webhook ? { webhook_url: suite.webhooks.url } : {}),
  };
  const context: CaseContext = { suite, id, request };
  suite.emulator.control.reset();
  // Leave the previous case's rate-limit windows behind.
  suite.clock.advance(10_000);
  suite.logs.length = 0;
  suite.events.length = 0;
  suite.webhooks.received.length = 0;

  const lambdaErrors: Record<string, number> = {};
  let outcome: Awaited<ReturnType<FaultSuite['runner']['run']>>;
  try {
    await fault.arrange?.(context);
    outcome = await suite.runner.run(id, request, {
      onTaskState: (state) => fault.onTaskState?.(context, state),
      onTaskError: (state, error) => {
        const key = `${state} ${error instanceof Error ? error.name : typeof error}`;
        lambdaErrors[key] = (lambdaErrors[key] ?? 0) + 1;
      },
    });
  } finally {
    delete suite.hooks.beforeS3Send;
    delete suite.hooks.interceptTask;
    delete suite.hooks.beforeSecretRead;
    await suite.s3.start();
  }

  const objects = await storedObjects(suite.s3.client, suite.s3.bucket, prefixOf(id));
  const failureEvents = suite.events.filter((event) => event.detailType === DETAIL_TYPE.failed);
  const observation: Observation = {
    status: outcome.status === 'SUCCEEDED' ? 'succeeded' : 'failed',
    output: outcome.status === 'SUCCEEDED' ? outcome.output : undefined,
    error: outcome.status === 'FAILED' ? outcome.error : undefined,
    failure: failureEvents[0]?.detail.error as FailureSeen | undefined,
    manifest: checkManifest(objects, prefixOf(id)),
    objects,
    tasks: suite.emulator.control.tasksCreated,
    calls: suite.emulator.control.calls,
    lambdaErrors,
    logs: [...suite.logs],
  };
  checkNoDuplicates(objects, seen);
  checkNoErrorLogs(observation.logs);
  await checkExpected(context, fault, observation, failureEvents.length);
  await fault.check?.(context, observation);
  return observation;
}

async function checkExpected(
  context: CaseContext,
  fault: FaultCase,
  seen: Observation,
  failureEvents: number,
): Promise<void> {
  const { expected } = fault;
  expect(seen.status, seen.error && `${seen.error}: ${seen.failure?.message}`).toBe(expected.status);
  expect(seen.error).toBe(expected.error);
  expect(storedIndexes(seen.objects)).toEqual(expected.stored);
  if (seen.status === 'failed') {
    expect(failureEvents, 'one "Generation Failed" event').toBe(1);
    const failure = checkFailure(seen.failure, expected.upstreamCode);
    expect(failure.name).toBe(expected.error);
    expect(failure.type).toBe(expected.type);
    expect(seen.manifest).toBeUndefined();
  } else {
    expect(seen.manifest?.status).toBe(expected.manifest);
    expect(seen.manifest?.dashscope.taskId).toBe(seen.output?.task.taskId);
    expect(seen.manifest?.images.map((image) => image.index)).toEqual(expected.stored);
    checkImageFailures(seen.manifest, expected.failedImages ?? []);
    await checkRenderedBytes(context, seen.objects);
  }
  expect(seen.tasks, 'tasks DashScope created').toBe(expected.tasks);
  expect(seen.calls.submit, 'submit calls').toBe(expected.submits);
  expect(seen.calls.download, 'result downloads').toBe(expected.downloads);
  if (expected.cancels !== undefined) expect(seen.calls.cancel, 'cancel calls').toBe(expected.cancels);
  expect(seen.lambdaErrors).toEqual(expected.lambdaErrors ?? {});
}

/** Each stored image holds exactly the bytes DashScope rendered for its seed. */
async function checkRenderedBytes(
  context: CaseContext,
  objects: ReadonlyMap<string, StoredObject>,
): Promise<void> {
  const [width, height] = context.request.size.split('*').map(Number) as [number, number];
  for (const object of objects.values()) {
    const index = imageIndexOf(object.key);
    if (index === undefined) continue;
    const rendered = await renderPng(context.request.prompt, context.request.seed + index, width, height);
    expect(object.bytes.equals(rendered), `${object.key} holds the rendered image`).toBe(true);
  }
}

export function storedIndexes(objects: ReadonlyMap<string, StoredObject>): number[] {
  return [...objects.keys()]
    .map(imageIndexOf)
    .filter((index): index is number => index !== undefined)
    .sort((a, b) => a - b);
}
