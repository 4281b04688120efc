import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { PNG } from 'pngjs';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createApiApp } from '../../functions/api/app.js';
import { manifestSchema } from '../../functions/persist/manifest.js';
import { createDynamoGenerationIndex } from '../../functions/shared/aws/dynamodb-index.js';
import { AdjustableClock } from '../../functions/shared/clock.js';
import { WORKFLOW_ERROR } from '../../functions/shared/errors.js';
import { generationRequestSchema } from '../../functions/shared/generation-request.js';
import { silentLogger } from '../../functions/shared/logger.js';
import { estimateRun, resolveRunTimeModel } from '../../functions/shared/run-time-estimate.js';
import type { TaskState } from '../../functions/shared/workflow-state.js';
import { renderPng } from '../../local/dashscope-emulator/png.js';
import { emulatorRunTimeModel } from '../../local/dashscope-emulator/run-time.js';
import {
  emulatorEndpoint,
  type RunningEmulator,
  startEmulator,
} from '../../local/dashscope-emulator/server.js';
import { ensureTable, type LocalDynamo, startLocalDynamo } from '../../local/dynamodb.js';
import { createLocalExecutionService } from '../../local/execution-service.js';
import {
  createLocalRunner,
  type ExecutionOutcome,
  generationsTableDefinition,
  LOCAL_TABLE,
  type LocalRunner,
  type LocalRunnerOptions,
} from '../../local/runner.js';
import { type LocalS3, startLocalS3 } from '../../local/s3.js';
import { SHORT_DEADLINE, TURBO_DEFAULT } from '../support/configurations.js';
import { waitFor } from '../support/wait-for.js';

/**
 * The whole pipeline: the state machine synthesized from the CDK stack, run by
 * aws-local-stepfunctions, the real handlers in-process, the DashScope emulator over HTTP and
 * s3rver. Wait states pass in virtual time on a clock shared with the emulator.
 */
let dir: string;
let s3: LocalS3;
let emulator: RunningEmulator;
let clock: AdjustableClock;
let runner: LocalRunner;
let dynamo: LocalDynamo;

function makeRunner(
  generation: Record<string, unknown> = {},
  dashscope: Partial<LocalRunnerOptions['dashscope']> = {},
): LocalRunner {
  const made = createLocalRunner({
    dashscope: { ...emulatorEndpoint(emulator), ...dashscope },
    s3: { client: s3.client, bucket: s3.bucket },
    index: { client: dynamo.client, table: LOCAL_TABLE },
    virtualWaits: clock,
    retryIntervalMs: 5,
    generation,
  });
  runners.push(made);
  return made;
}

/** Every runner a test made, so `afterEach` can abort what it left running. */
const runners: LocalRunner[] = [];

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'e2e-'));
  s3 = await startLocalS3({ directory: dir });
  clock = new AdjustableClock();
  dynamo = await startLocalDynamo();
});

afterAll(async () => {
  await s3?.close();
  await dynamo?.close();
  await rm(dir, { recursive: true, force: true });
});

// Each test has its own emulator (its own DashScope account: tasks, counters, rate limits) and
// its own runner (engine, dispatcher), so no test reads what another left behind.
beforeEach(async () => {
  emulator = await startEmulator({ clock });
  runner = makeRunner();
  await ensureTable(dynamo.client, LOCAL_TABLE, generationsTableDefinition(runner.template));
});

afterEach(async () => {
  await Promise.all(runners.splice(0).map((made) => made.abortAll()));
  await emulator.close();
});

let sequence = 0;
const nextId = () => `e2e-${++sequence}`;

async function objectKeys(id: string): Promise<string[]> {
  const listed = await s3.client.send(
    new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: `generations/${id}/` }),
  );
  return (listed.Contents ?? []).map((object) => object.Key ?? '').sort();
}

async function objectBytes(key: string): Promise<Buffer> {
  const object = await s3.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }));
  return Buffer.from(await object.Body!.transformToByteArray());
}

/** The emulator's record of this test's own task (never another test's, whatever is left running). */
function taskAtDashScope(taskId: string | undefined) {
  return emulator.control.tasks().find((task) => task.taskId === taskId);
}

function succeeded(outcome: ExecutionOutcome) {
  if (outcome.status !== 'SUCCEEDED')
    throw new Error(`expected success, got ${outcome.error}: ${outcome.cause}`);
  return outcome.output;
}

describe('the synthesized workflow, locally', () => {
  it('generates n=4 images and stores exactly the bytes DashScope rendered, manifest included', async () => {
    const id = nextId();
    const request = {
      prompt: 'Eagle flying freely in the blue sky and white clouds',
      n: 4,
      size: '768*512',
      seed: 7,
    };

    const output = succeeded(await runner.run(id, request));

    expect(output.result.status).toBe('complete');
    expect(await objectKeys(id)).toEqual(
      [0, 1, 2, 3]
        .flatMap((i) => [`generations/${id}/${i}.png`, `generations/${id}/thumbnails/${i}.webp`])
        .concat(`generations/${id}/manifest.json`)
        .sort(),
    );
    for (let i = 0; i < 4; i++) {
      const stored = await objectBytes(`generations/${id}/${i}.png`);
      expect(stored.equals(await renderPng(request.prompt, 7 + i, 768, 512))).toBe(true);
      const png = PNG.sync.read(stored);
      expect([png.width, png.height]).toEqual([768, 512]);
    }
    const manifest = manifestSchema.parse(
      JSON.parse((await objectBytes(output.result.manifestKey)).toString()),
    );
    expect(manifest.images.map((image) => image.seed)).toEqual([7, 8, 9, 10]);
    for (const image of manifest.images) {
      const thumbnail = await objectBytes(image.thumbnail?.key ?? '');
      expect(thumbnail.subarray(8, 12).toString('latin1')).toBe('WEBP');
      expect(image.thumbnail).toMatchObject({ bytes: thumbnail.length, width: 256, height: 171 });
      expect(thumbnail.length).toBeLessThan(image.bytes);
    }
    expect(manifest.dashscope.taskId).toBe(output.task.taskId);
    expect(manifest.usage.imageCount).toBe(4);
  });

  it('records a partial failure: the good images stored, the failed ones named in the manifest', async () => {
    const id = nextId();
    emulator.control.planNextTask({ failImages: [1, 3] });

    const output = succeeded(await runner.run(id, { prompt: 'a red fox', n: 4, size: '512*512', seed: 1 }));

    expect(output.result.status).toBe('partial');
    expect(output.result.images.map((image) => image.index)).toEqual([0, 2]);
    expect(output.result.failed).toEqual([
      { index: 1, type: 'upstream_error', message: expect.stringMatching(/timeout/i) },
      { index: 3, type: 'upstream_error', message: expect.stringMatching(/timeout/i) },
    ]);
    expect(await objectKeys(id)).toEqual([
      `generations/${id}/0.png`,
      `generations/${id}/2.png`,
      `generations/${id}/manifest.json`,
      `generations/${id}/thumbnails/0.webp`,
      `generations/${id}/thumbnails/2.webp`,
    ]);
  });

  it('fails with DashScopeTaskFailed and the upstream code when the task FAILED, storing nothing', async () => {
    const id = nextId();
    emulator.control.planNextTask({
      fail: { code: 'InvalidParameter', message: 'The image source is invalid.' },
    });

    const outcome = await runner.run(id, { prompt: 'a blue whale', size: '512*512' });

    expect(outcome).toEqual({
      status: 'FAILED',
      error: WORKFLOW_ERROR.taskFailed,
      cause: 'DashScope task failed: InvalidParameter: The image source is invalid.',
    });
    expect(await objectKeys(id)).toEqual([]);
  });

  it('retries a throttled submit and then succeeds with a single task', async () => {
    const id = nextId();
    emulator.control.injectFault('submit', { status: 429, code: 'Throttling.RateQuota' }, 2);

    const output = succeeded(await runner.run(id, { prompt: 'a lighthouse at dusk', size: '512*512' }));

    expect(output.result.images).toHaveLength(1);
    expect(emulator.control.counts.submits).toBe(3);
    expect(emulator.control.tasks()).toHaveLength(1);
  });

  it('fails at once, without a retry, on a permanent submit error', async () => {
    const id = nextId();
    emulator.control.injectFault('submit', {
      status: 400,
      code: 'DataInspectionFailed',
      message: 'Input data may contain inappropriate content.',
    });

    const outcome = await runner.run(id, { prompt: 'something refused', size: '512*512' });

    expect(outcome).toMatchObject({
      status: 'FAILED',
      error: 'ContentPolicyError',
      cause: expect.stringContaining('DataInspectionFailed'),
    });
    expect(emulator.control.counts.submits).toBe(1);
  });

  it('waits in the queue behind a running task, then runs and succeeds', async () => {
    const first = nextId();
    const second = nextId();
    const seen: TaskState[] = [];
    emulator.control.planNextTask({ durationMs: 60_000 });

    const firstRun = runner.run(first, { prompt: 'the first job', size: '512*512' });
    // Let the first task be submitted before the second.
    await waitFor(() => emulator.control.tasks().length === 1, FIRST_TASK);
    const secondRun = runner.run(
      second,
      { prompt: 'the second job', size: '512*512' },
      { onTaskState: (s) => seen.push(s) },
    );
    const [a, b] = await Promise.all([firstRun, secondRun]);

    succeeded(a);
    const output = succeeded(b);
    expect(seen.some((state) => state.status === 'queued' && state.pollCount > 0)).toBe(true);
    expect(seen.at(-1)?.status).toBe('succeeded');
    const firstTask = succeeded(a).task;
    expect(Date.parse(output.task.times.scheduled ?? '')).toBeGreaterThanOrEqual(
      Date.parse(firstTask.times.end ?? ''),
    );
  });

  it('past the deadline, cancels a task still PENDING and fails with DeadlineExceeded', async () => {
    const shortDeadline = makeRunner(SHORT_DEADLINE);
    const blocker = nextId();
    const late = nextId();
    emulator.control.planNextTask({ durationMs: 30 * 60_000 });

    const blockerRun = shortDeadline.run(blocker, { prompt: 'a very long job', size: '512*512' });
    await waitFor(() => emulator.control.tasks().length === 1, FIRST_TASK);
    const lateRun = shortDeadline.run(late, { prompt: 'stuck in the queue', size: '512*512' });
    const [blocked, waited] = await Promise.all([blockerRun, lateRun]);

    expect(waited).toMatchObject({
      status: 'FAILED',
      error: WORKFLOW_ERROR.deadlineExceeded,
      cause: expect.stringContaining('PENDING'),
    });
    expect(blocked).toMatchObject({
      status: 'FAILED',
      error: WORKFLOW_ERROR.deadlineExceeded,
      cause: expect.stringContaining('RUNNING'),
    });
    const [running, pending] = emulator.control.tasks();
    expect(pending?.status).toBe('CANCELED');
    expect(running?.status).not.toBe('CANCELED');
    expect(await objectKeys(late)).toEqual([]);
  });

  it('aborts every execution still running when asked (what afterEach relies on)', async () => {
    emulator.control.planNextTask({ durationMs: 30 * 60_000 });
    const started = runner.start(nextId(), { prompt: 'left running', size: '512*512' });
    await waitFor(() => emulator.control.tasks().length === 1, FIRST_TASK);

    await runner.abortAll();

    await expect(started.outcome).resolves.toEqual({ status: 'ABORTED' });
  });

  it("estimates with the DashScope's run times it is given (the emulator's), from the same synthesis", async () => {
    const model = emulatorRunTimeModel(40);
    const fast = makeRunner({}, { runTimeModel: model });
    const request = { prompt: 'a heron in the reeds', size: '512*512' };
    const expected: unknown[] = [];

    succeeded(
      await fast.run(nextId(), request, { onTaskState: (state) => expected.push(state.expectedRun) }),
    );

    expect(fast.template).toEqual(runner.template);
    const shape = generationRequestSchema.parse(request);
    expect(expected[0]).toEqual(estimateRun(shape, resolveRunTimeModel(model)));
    expect(estimateRun(shape, resolveRunTimeModel(model)).seconds).toBeLessThan(estimateRun(shape).seconds);
  });

  it('rejects a bad request in the first state, naming the field', async () => {
    const outcome = await runner.run(nextId(), { prompt: 'ok', n: 9 });

    expect(outcome).toMatchObject({
      status: 'FAILED',
      error: 'InvalidRequestError',
      cause: expect.stringContaining('request.n'),
    });
    expect(emulator.control.counts.submits).toBe(0);
  });
});

/**
 * A deployment whose `defaultModel` is turbo: the synthesized workflow fills it into a request
 * that names no model (a direct StartExecution, an event), and the API does the same for the
 * requests it starts and the generations it shows.
 */
describe('a configured default model', () => {
  const turbo = TURBO_DEFAULT.defaultModel;
  let turboRunner: LocalRunner;

  beforeEach(() => {
    turboRunner = makeRunner(TURBO_DEFAULT);
  });

  it('is used for a request started without one, and recorded in the manifest', async () => {
    const output = succeeded(await turboRunner.run(nextId(), { prompt: 'an owl at night', size: '512*512' }));

    expect(taskAtDashScope(output.task.taskId)?.model).toBe(turbo);
    const manifest = manifestSchema.parse(
      JSON.parse((await objectBytes(output.result.manifestKey)).toString()),
    );
    expect(manifest.request.model).toBe(turbo);
    expect(manifest.parameters.model).toBe(turbo);
  });

  it('never overrides the model a request names', async () => {
    const output = succeeded(
      await turboRunner.run(nextId(), {
        prompt: 'an owl at noon',
        size: '512*512',
        model: 'stable-diffusion-3.5-large',
      }),
    );

    expect(taskAtDashScope(output.task.taskId)?.model).toBe('stable-diffusion-3.5-large');
  });

  it('is what the API starts and shows for a body without a model', async () => {
    const executions = createLocalExecutionService(turboRunner, clock);
    const app = createApiApp({
      executions,
      index: createDynamoGenerationIndex(dynamo.client, LOCAL_TABLE),
      presign: async (key) => ({
        url: `https://example.invalid/${key}`,
        expiresAt: new Date().toISOString(),
      }),
      clock,
      logger: silentLogger,
      defaultModel: turbo,
    });

    const created = await app.request('/v1/generations', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'an owl at dusk', size: '512*512' }),
    });
    const { id } = (await created.json()) as { id: string };
    await executions.settled(id);
    const view = (await (await app.request(`/v1/generations/${id}`)).json()) as Record<string, any>;

    expect(view.status).toBe('succeeded');
    expect(view.request.model).toBe(turbo);
    expect(taskAtDashScope(view.dashscope.taskId)?.model).toBe(turbo);
  });
});

/**
 * The wait for the first task to reach the emulator. Looked for often: its run passes in virtual
 * time, which jumps while the test is not looking.
 */
const FIRST_TASK = { what: 'the first task to reach DashScope', timeoutMs: 120_000, intervalMs: 5 } as const;
