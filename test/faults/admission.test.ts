import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type LoadRig, startLoadRig } from '../../bench/lib/load-rig.js';
import { createApiApp } from '../../functions/api/app.js';
import type { GenerationView } from '../../functions/api/schemas.js';
import { type AdmissionQueue, DEFAULT_ACCOUNT } from '../../functions/shared/admission.js';
import { createDynamoBatchIndex } from '../../functions/shared/aws/dynamodb-batches.js';
import { createDynamoGenerationIndex } from '../../functions/shared/aws/dynamodb-index.js';
import { createS3ObjectStore } from '../../functions/shared/aws/s3-object-store.js';
import { DETAIL_TYPE } from '../../functions/shared/events.js';
import { IndexUnavailableError } from '../../functions/shared/generation-index.js';
import { createRequestEventHandler } from '../../functions/trigger/handler.js';
import { createLocalExecutionService } from '../../local/execution-service.js';
import { LOCAL_TASK_TOKENS } from '../../local/local-admission.js';
import { LOCAL_TABLE } from '../../local/runner.js';
import { waitFor } from '../support/wait-for.js';
import { recordingLogger } from './harness.js';
import { checkNoErrorLogs, type LogLine } from './invariants.js';

/**
 * Admission's faults, through the synthesized workflow in virtual time with the queue in
 * dynalite (the DynamoDB adapter), the emulator at the account's real limits and s3rver: the
 * rig of the load case. Locally the dispatcher runs on kicks only; where a case needs its
 * one-minute sweep, it moves the clock and kicks it, as the schedule would.
 */
let rig: LoadRig;
const logs: LogLine[] = [];

beforeAll(async () => {
  rig = await startLoadRig({ logger: recordingLogger(logs) });
  // Synthesizing the stack and starting the servers take minutes when every core is busy.
}, 300_000);

afterAll(async () => {
  await rig?.close();
});

afterEach(async () => {
  // Nothing a case started outlives it.
  await rig.runner.abortAll();
  // Each case's lines, whatever it ended in: no fault here is worth an ERROR.
  checkNoErrorLogs(logs.splice(0));
});

const request = (prompt: string) => ({ prompt, n: 1, size: '512*512', seed: 7 });

/** Runs the dispatcher as its schedule would, `afterMs` from now, and returns that run's report. */
async function sweepAfter(afterMs: number) {
  const { dispatcher } = rig.runner.admission;
  await dispatcher.idle();
  const before = dispatcher.reports.length;
  rig.clock.advance(afterMs);
  await dispatcher.kick();
  await dispatcher.idle();
  const reports = dispatcher.reports.slice(before);
  return {
    regranted: reports.flatMap((report) => report.regranted),
    freed: reports.flatMap((report) => report.freed),
    granted: reports.flatMap((report) => report.granted.map((grant) => grant.id)),
  };
}

/** Makes every `release` of these ids fail as a DynamoDB write would; returns the undo. */
function failReleasesOf(queue: AdmissionQueue, ids: ReadonlySet<string>): () => void {
  const writable = queue as { release: AdmissionQueue['release'] };
  const original = writable.release;
  writable.release = async (id) => {
    if (ids.has(id))
      throw new IndexUnavailableError(
        'Admission queue release failed: ProvisionedThroughputExceededException',
      );
    return original.call(queue, id);
  };
  return () => {
    writable.release = original;
  };
}

describe('admission faults', () => {
  it('dispatcher crashes between recording a grant and resuming: the sweep resumes it, one task', async () => {
    const id = 'admission-crash';
    const tasksBefore = rig.emulator.control.tasksCreated;
    const resume = LOCAL_TASK_TOKENS.resume;
    let crashed = false;
    // The grant is written to the table, then the dispatcher dies before SendTaskSuccess.
    LOCAL_TASK_TOKENS.resume = async (token, grant) => {
      if (!token.includes(`:${id}:`) || crashed) return resume.call(LOCAL_TASK_TOKENS, token, grant);
      crashed = true;
      throw new Error('Runtime exited with error: signal: killed');
    };
    try {
      const execution = rig.runner.start(id, request('granted, never resumed'));
      await waitFor(async () => crashed && (await rig.runner.admission.queue.get(id))?.kind === 'granted', {
        what: `${id}'s grant to be recorded and its resume to crash`,
        timeoutMs: 120_000,
      });
      await rig.runner.admission.dispatcher.idle();
      expect(rig.emulator.control.tasksCreated - tasksBefore, 'nothing submitted yet').toBe(0);

      const sweep = await sweepAfter(61_000);

      expect(sweep.regranted).toEqual([id]);
      expect((await execution.outcome).status).toBe('SUCCEEDED');
      expect(rig.emulator.control.tasksCreated - tasksBefore).toBe(1);
      expect(await rig.runner.admission.queue.get(id)).toBeUndefined();
    } finally {
      LOCAL_TASK_TOKENS.resume = resume;
    }
    expect(logs.some((line) => line.message === 'Dispatcher run failed')).toBe(true);
  }, 600_000);

  it('slot releases lost: the sweep frees the slots of ended generations and the queue moves on', async () => {
    const { queue, settings } = rig.runner.admission;
    const depth = settings.accounts[0]?.depth ?? 0;
    const leaked = Array.from({ length: depth }, (_, i) => `admission-leak-${i}`);
    const restore = failReleasesOf(queue, new Set(leaked));
    try {
      // Poll's, Notify's, the reconciler's and the execution's end releases all fail.
      const ended = await Promise.all(leaked.map((id) => rig.runner.run(id, request(`leaks ${id}`))));
      expect(ended.map((outcome) => outcome.status)).toEqual(leaked.map(() => 'SUCCEEDED'));
    } finally {
      restore();
    }
    expect((await queue.slots(DEFAULT_ACCOUNT)).map((slot) => slot.id)).toEqual(leaked);

    const next = 'admission-after-leak';
    const tasksBefore = rig.emulator.control.tasksCreated;
    const execution = rig.runner.start(next, request('waits behind leaked slots'));
    await waitFor(async () => (await queue.get(next))?.kind === 'waiting', {
      what: `${next} to wait in the queue`,
      timeoutMs: 120_000,
    });
    await rig.runner.admission.dispatcher.idle();
    expect((await queue.get(next))?.kind, 'every slot is held').toBe('waiting');

    const sweep = await sweepAfter(10 * 60_000 + 1000);

    expect(sweep.freed).toEqual(leaked);
    expect(sweep.granted).toEqual([next]);
    expect((await execution.outcome).status).toBe('SUCCEEDED');
    expect(rig.emulator.control.tasksCreated - tasksBefore).toBe(1);
    expect(await queue.slots(DEFAULT_ACCOUNT)).toEqual([]);
  }, 600_000);

  it('a cancel while queued: no task at DashScope, status canceled, the queue entry gone', async () => {
    const { queue, settings, dispatcher } = rig.runner.admission;
    const index = createDynamoGenerationIndex(rig.dynamo.client, LOCAL_TABLE);
    const executions = createLocalExecutionService(rig.runner, rig.clock);
    const app = createApiApp({
      executions,
      index,
      presign: async (key) => ({
        url: `https://example.invalid/${key}`,
        expiresAt: new Date().toISOString(),
      }),
      clock: rig.clock,
      logger: recordingLogger(logs),
      admission: { queue, settings },
    });
    // Every slot is held by other generations (no execution behind them): new ones wait.
    const depth = settings.accounts[0]?.depth ?? 0;
    const holders = Array.from({ length: depth }, (_, i) => `admission-holder-${i}`);
    for (const holder of holders) {
      await queue.enqueue({
        id: holder,
        lane: 'batch',
        enqueuedAt: rig.clock.now(),
        expectedRunSeconds: 60,
        token: `no-execution:${holder}`,
      });
      expect(await queue.grant(holder, DEFAULT_ACCOUNT, rig.clock.now())).toBe(true);
    }
    const tasksBefore = rig.emulator.control.tasksCreated;

    const created = await app.request('/v1/generations', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'canceled while it waits', size: '512*512' }),
    });
    expect(created.status).toBe(202);
    const { id } = (await created.json()) as { id: string };
    await waitFor(async () => (await queue.get(id))?.kind === 'waiting', {
      what: `${id} to wait in the queue`,
      timeoutMs: 120_000,
    });

    const canceled = await app.request(`/v1/generations/${id}/cancel`, { method: 'POST' });

    expect(((await canceled.json()) as GenerationView).status).toBe('canceled');
    expect(await queue.get(id)).toBeUndefined();
    // The slots come free: nothing of the canceled one is left to grant.
    for (const holder of holders) await queue.release(holder);
    await dispatcher.kick();
    await dispatcher.idle();
    expect((await executions.describe(id))?.status).toBe('ABORTED');
    await executions.settled(id);
    expect(dispatcher.reports.flatMap((report) => report.granted.map((grant) => grant.id))).not.toContain(id);
    expect(rig.emulator.control.tasksCreated - tasksBefore).toBe(0);
    expect((await index.get(id))?.status).toBe('canceled');
  }, 600_000);

  it('a "Generation Requested" event delivered three times: one generation, one task', async () => {
    const index = createDynamoGenerationIndex(rig.dynamo.client, LOCAL_TABLE);
    const executions = createLocalExecutionService(rig.runner, rig.clock);
    const handle = createRequestEventHandler({
      objects: createS3ObjectStore(rig.s3.client),
      executions,
      index,
      batches: createDynamoBatchIndex(rig.dynamo.client, LOCAL_TABLE),
      clock: rig.clock,
      events: { publish: async () => {} },
      logger: recordingLogger(logs),
    });
    const event = {
      version: '0',
      id: 'admission-duplicate-event-1',
      'detail-type': DETAIL_TYPE.requested,
      source: 'example.orders',
      detail: request('requested once, delivered three times'),
    };
    const tasksBefore = rig.emulator.control.tasksCreated;

    // EventBridge delivers at least once: twice at once, then again after it ended.
    const concurrent = await Promise.all([handle(event), handle(event)]);
    const id = concurrent[0]?.id as string;
    await executions.settled(id);
    const late = await handle(event);
    await rig.runner.admission.dispatcher.idle();

    expect(concurrent.map((result) => [result.id, result.status])).toEqual([
      [id, 'started'],
      [id, 'started'],
    ]);
    expect([late.id, late.status]).toEqual([id, 'duplicate']);
    expect(rig.emulator.control.tasksCreated - tasksBefore).toBe(1);
    expect((await index.get(id))?.status).toBe('succeeded');
    const prompts = rig.emulator.control.tasks().map((task) => task.prompt);
    expect(prompts.filter((prompt) => prompt === event.detail.prompt)).toHaveLength(1);
  }, 600_000);
});
