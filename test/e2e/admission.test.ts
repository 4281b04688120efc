import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createApiApp } from '../../functions/api/app.js';
import type { GenerationView } from '../../functions/api/schemas.js';
import { createDynamoGenerationIndex } from '../../functions/shared/aws/dynamodb-index.js';
import { AdjustableClock, systemClock } from '../../functions/shared/clock.js';
import { silentLogger } from '../../functions/shared/logger.js';
import { emulatorRunTimeModel } from '../../local/dashscope-emulator/run-time.js';
import { type RunningEmulator, startEmulator } from '../../local/dashscope-emulator/server.js';
import { ensureTable, type LocalDynamo, startLocalDynamo } from '../../local/dynamodb.js';
import { createLocalExecutionService } from '../../local/execution-service.js';
import { createLocalRunner, generationsTableDefinition, type LocalRunner } from '../../local/runner.js';
import { type LocalS3, startLocalS3 } from '../../local/s3.js';
import { admissionDeployment } from '../support/configurations.js';
import { waitFor } from '../support/wait-for.js';

/**
 * Admission through the synthesized workflow and the API: one emulated account at depth 1 held by
 * a task that runs until it is stopped, in real time (a generation must be seen waiting), then a
 * second deployment of two emulated accounts, in virtual time.
 */
const SPEED = 40;
let dir: string;
let s3: LocalS3;
let dynamo: LocalDynamo;
const emulators: RunningEmulator[] = [];
/** The runners a test deployed, so `afterEach` can abort what it left running. */
const runners: LocalRunner[] = [];

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'admission-'));
  s3 = await startLocalS3({ directory: dir });
  dynamo = await startLocalDynamo();
  // Synthesizing the stack and starting s3rver take minutes when every core is busy.
}, 300_000);

afterEach(async () => {
  await Promise.all(runners.splice(0).map((runner) => runner.abortAll()));
});

afterAll(async () => {
  for (const emulator of emulators) await emulator.close();
  await s3?.close();
  await dynamo?.close();
  await rm(dir, { recursive: true, force: true });
});

/**
 * A deployment of `accounts` emulated accounts. With `virtualWaits`, its waits and the emulator's
 * run times pass in virtual time (as fast as the machine goes); without, in real time.
 */
async function deployment(table: string, accounts: number, depth: number, virtualWaits?: AdjustableClock) {
  const started = await Promise.all(
    Array.from({ length: accounts }, (_, i) =>
      startEmulator({ speed: SPEED, apiKey: `sk-account-${i}`, clock: virtualWaits }),
    ),
  );
  emulators.push(...started);
  const generation = admissionDeployment(accounts, depth);
  const runner: LocalRunner = createLocalRunner({
    dashscope: {
      baseUrl: started[0]?.url ?? '',
      apiKey: started[0]?.apiKey ?? '',
      resultHosts: ['127.0.0.1'],
      allowHttpResults: true,
      accounts: started.map((emulator, i) => ({
        name: generation.dashscopeAccounts[i]?.name as string,
        baseUrl: emulator.url,
        apiKey: emulator.apiKey,
      })),
      runTimeModel: emulatorRunTimeModel(SPEED),
    },
    s3: { client: s3.client, bucket: s3.bucket },
    index: { client: dynamo.client, table },
    virtualWaits,
    generation,
  });
  runners.push(runner);
  await ensureTable(dynamo.client, table, generationsTableDefinition(runner.template));
  const executions = createLocalExecutionService(runner, virtualWaits ?? systemClock);
  const app = createApiApp({
    executions,
    index: createDynamoGenerationIndex(dynamo.client, table),
    presign: async (key) => ({ url: `https://example.invalid/${key}`, expiresAt: new Date().toISOString() }),
    clock: systemClock,
    logger: silentLogger,
    admission: runner.admission,
  });
  return { emulators: started, runner, executions, app };
}

type Deployment = Awaited<ReturnType<typeof deployment>>;

async function create(app: Deployment['app'], body: Record<string, unknown>): Promise<string> {
  const response = await app.request('/v1/generations', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ size: '512*512', ...body }),
  });
  expect(response.status).toBe(202);
  return ((await response.json()) as { id: string }).id;
}

async function view(app: Deployment['app'], id: string): Promise<GenerationView> {
  return (await (await app.request(`/v1/generations/${id}`)).json()) as GenerationView;
}

describe('admission control', () => {
  it('shows the lane, position and estimated start while waiting, and a cancel takes one out at once', async () => {
    const {
      emulators: [account],
      app,
      executions,
      runner,
    } = await deployment('admission-one', 1, 1);
    const control = (account as RunningEmulator).control;
    control.planNextTask({ durationMs: Number.POSITIVE_INFINITY });

    const blocker = await create(app, { prompt: 'holds the only slot', priority: 'batch' });
    await waitFor(() => control.tasks()[0]?.status === 'RUNNING', {
      what: 'the blocker to run at DashScope',
      timeoutMs: 120_000,
    });
    const batch = await create(app, { prompt: 'a batch job', priority: 'batch' });
    const first = await create(app, { prompt: 'someone waits on this' });
    const second = await create(app, { prompt: 'and on this' });
    await waitFor(async () => (await view(app, second)).queue !== undefined, {
      what: 'the second generation to show its place in the queue',
      timeoutMs: 120_000,
    });

    const views = await Promise.all([first, second, batch].map((id) => view(app, id)));
    expect(views.map((v) => [v.status, v.queue?.lane, v.queue?.position])).toEqual([
      ['queued', 'interactive', 0],
      ['queued', 'interactive', 1],
      ['queued', 'batch', 2],
    ]);
    const starts = views.map((v) => Date.parse(v.queue?.estimatedStartAt ?? ''));
    expect(starts[0]).toBeGreaterThanOrEqual(Date.now() - 1000);
    expect(starts[1]).toBeGreaterThan(starts[0] as number);

    const canceled = await app.request(`/v1/generations/${first}/cancel`, { method: 'POST' });
    expect(((await canceled.json()) as GenerationView).status).toBe('canceled');
    expect(await runner.admission.queue.get(first)).toBeUndefined();
    expect((await view(app, second)).queue?.position).toBe(0);
    expect((await view(app, batch)).queue?.position).toBe(1);

    // The blocker's task ends at DashScope (dropped: its poll sees UNKNOWN), which frees the
    // slot: the interactive one goes first, then the batch one.
    control.forgetTask(control.tasks()[0]?.taskId ?? '');
    await executions.settled(second);
    await executions.settled(batch);
    expect((await view(app, blocker)).status).toBe('expired');
    expect((await view(app, second)).status).toBe('succeeded');
    expect((await view(app, batch)).status).toBe('succeeded');
    expect(control.tasks().map((task) => task.prompt)).toEqual(['and on this', 'a batch job']);
    // The canceled one never reached DashScope.
    expect(control.tasksCreated).toBe(3);
    await executions.settled(blocker);
    await runner.admission.dispatcher.idle();
  }, 600_000);

  it('spreads generations over several accounts and records which one ran each', async () => {
    // Nothing here needs to be seen waiting: virtual time.
    const {
      emulators: accounts,
      app,
      executions,
      runner,
    } = await deployment('admission-two', 2, 1, new AdjustableClock());

    const ids = [];
    for (let i = 0; i < 4; i++) ids.push(await create(app, { prompt: `spread ${i}`, priority: 'batch' }));
    for (const id of ids) await executions.settled(id);

    const views = await Promise.all(ids.map((id) => view(app, id)));
    expect(views.map((v) => v.status)).toEqual(['succeeded', 'succeeded', 'succeeded', 'succeeded']);
    expect(accounts.map((account) => account.control.tasksCreated)).toEqual([2, 2]);
    for (const v of views) {
      const account = Number(v.dashscope.account?.replace('account-', ''));
      const emulator = accounts[account] as RunningEmulator;
      expect(emulator.control.tasks().map((task) => task.taskId)).toContain(v.dashscope.taskId);
    }
    await runner.admission.dispatcher.idle();
  }, 600_000);
});
