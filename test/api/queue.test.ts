import { describe, expect, it } from 'vitest';
import { createApiApp } from '../../functions/api/app.js';
import { getBatch } from '../../functions/api/batches.js';
import type { GenerationView } from '../../functions/api/schemas.js';
import { dispatch } from '../../functions/dispatch/dispatch.js';
import type { AdmissionSettings } from '../../functions/shared/admission.js';
import { generationRequestSchema } from '../../functions/shared/generation-request.js';
import { silentLogger } from '../../functions/shared/logger.js';
import { batchCompletionMs } from '../../functions/shared/queue-estimate.js';
import { estimateRun } from '../../functions/shared/run-time-estimate.js';
import { MemoryAdmissionQueue } from '../../local/memory-admission.js';
import { MemoryBatchIndex, MemoryGenerationIndex } from '../fakes/memory-index.js';
import { FakeExecutionService } from './fake-executions.js';
import { fakePresign, taskState } from './fixtures.js';

/** The queue as the API shows it: a waiting generation's lane, position and start estimate. */
const NOW = Date.UTC(2026, 2, 1, 12, 0, 0);
const clock = { now: () => NOW };
const SETTINGS: AdmissionSettings = {
  accounts: [{ name: 'main', depth: 1, submitsPerSecond: 2 }],
  batchEvery: 4,
  maxQueueSeconds: 604_800,
};

function setup() {
  const index = new MemoryGenerationIndex();
  const executions = new FakeExecutionService(clock, index);
  const queue = new MemoryAdmissionQueue();
  const app = createApiApp({
    executions,
    index,
    presign: fakePresign,
    clock,
    logger: silentLogger,
    admission: { queue, settings: SETTINGS },
  });
  /** Creates a generation through the API (202): its execution has not reached Admit yet. */
  const registered = async (body: Record<string, unknown>) => {
    const response = await app.request('/v1/generations', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    expect(response.status).toBe(202);
    return ((await response.json()) as { id: string }).id;
  };
  /** Creates a generation through the API and puts it in the queue as Admit would. */
  const waiting = async (body: Record<string, unknown>, at: number) => {
    const id = await registered(body);
    const lane = (body.priority as 'batch' | undefined) ?? 'interactive';
    await queue.enqueue({ id, lane, enqueuedAt: NOW + at, expectedRunSeconds: 20, token: `token-${id}` });
    return id;
  };
  const view = async (id: string) =>
    (await (await app.request(`/v1/generations/${id}`)).json()) as GenerationView;
  /** One run of the real dispatcher at `at`: it grants the free slot and notes when its runner is free. */
  const dispatched = (at: number) =>
    dispatch({
      queue,
      resumer: { resume: async () => 'resumed', fail: async () => 'failed' },
      settings: SETTINGS,
      clock: { now: () => at },
      sleep: async () => undefined,
      logger: silentLogger,
    });
  return { app, executions, queue, registered, waiting, view, dispatched };
}

/** The run Admit expects of a request (the default run-time model), seconds. */
const runOf = (body: Record<string, unknown>) => estimateRun(generationRequestSchema.parse(body)).seconds;

describe('the queue in GET /v1/generations/{id}', () => {
  it('shows the lane, the grants before it and when its task should start, behind a held slot', async () => {
    const { waiting, view, dispatched } = setup();
    const running = await waiting({ prompt: 'holds the slot', priority: 'batch' }, 0);
    // Granted 5 s ago: its 20-s run leaves the runner free in 15 s.
    await dispatched(NOW - 5000);
    const batch = await waiting({ prompt: 'batch', priority: 'batch' }, 1);
    const first = await waiting({ prompt: 'first' }, 2);
    const second = await waiting({ prompt: 'second' }, 3);

    expect((await view(first)).queue).toEqual({
      lane: 'interactive',
      position: 0,
      // The held task has 15 s of its 20 s left, as the dispatcher planned it.
      estimatedStartAt: new Date(NOW + 15_000).toISOString(),
    });
    expect((await view(second)).queue).toMatchObject({ lane: 'interactive', position: 1 });
    expect((await view(second)).queue?.estimatedStartAt).toBe(new Date(NOW + 35_000).toISOString());
    expect((await view(batch)).queue).toMatchObject({ lane: 'batch', position: 2 });
    expect((await view(running)).queue).toBeUndefined();
  });

  it('times the grants ahead at the account’s observed pace, not at the run-time model’s estimate', async () => {
    const { queue, waiting, view } = setup();
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push(await waiting({ prompt: `batch ${i}`, priority: 'batch' }, i));
    // The dispatcher saw the account free a slot every 45 s while it was full with entries waiting.
    await queue.writeState({
      interactiveStreak: 0,
      runnersFreeAt: { main: NOW + 10_000 },
      pace: { main: { freed: 8, overMs: 8 * 45_000, fullSince: NOW - 2000 } },
    });

    const last = (await view(ids[4] as string)).queue;

    // Behind 4, each at 45 s, once the runner frees: not 4 × this request's own estimate.
    expect(last).toEqual({
      lane: 'batch',
      position: 4,
      estimatedStartAt: new Date(NOW + 10_000 + 4 * 45_000).toISOString(),
    });
  });

  it('shows a batch line not yet admitted where Admit will put it: its line’s rounds on, not behind every entry', async () => {
    const { executions, queue, view } = setup();
    for (let line = 1; line <= 10; line++)
      await queue.enqueue({
        id: `batch-big-${line}`,
        lane: 'batch',
        enqueuedAt: NOW + line,
        expectedRunSeconds: 20,
        token: `t${line}`,
      });
    // Line 2 of another batch, registered, its execution not at Admit yet.
    executions.seed({ name: 'batch-small-2', input: { prompt: 'small two', priority: 'batch' } });

    // Round 2: behind the big batch's line 1 (round 1) only, as the fair order serves it.
    expect((await view('batch-small-2')).queue).toMatchObject({ lane: 'batch', position: 1 });
  });

  it('is absent once the generation holds a slot', async () => {
    const { queue, waiting, view } = setup();
    const id = await waiting({ prompt: 'granted' }, 0);
    await queue.grant(id, 'main', NOW);

    expect((await view(id)).queue).toBeUndefined();
  });

  it('shows a generation not yet admitted at the end of its interactive lane', async () => {
    const { queue, registered, waiting, view, dispatched } = setup();
    await waiting({ prompt: 'holds the slot', priority: 'batch' }, 0);
    await dispatched(NOW - 5000);
    await waiting({ prompt: 'first' }, 1);
    await waiting({ prompt: 'second' }, 2);
    const body = { prompt: 'just asked for' };

    const id = await registered(body);

    expect(await queue.get(id)).toBeUndefined();
    expect(runOf(body)).not.toBe(20);
    expect((await view(id)).queue).toEqual({
      lane: 'interactive',
      // Behind the two interactive entries waiting; nothing waits in batch.
      position: 2,
      // The held task's 15 s left, then the two ahead, each as long as the mean expected run of
      // the entries waiting (20 s each here), not this request's own.
      estimatedStartAt: new Date(NOW + 15_000 + 20_000 + 20_000).toISOString(),
    });
  });

  it('shows a batch generation not yet admitted at the end of the batch lane', async () => {
    const { registered, waiting, view } = setup();
    await waiting({ prompt: 'batch one', priority: 'batch' }, 0);
    await waiting({ prompt: 'batch two', priority: 'batch' }, 1);

    const id = await registered({ prompt: 'a batch job', priority: 'batch' });

    expect((await view(id)).queue).toMatchObject({ lane: 'batch', position: 2 });
  });

  it('puts a request that names no lane in batch, as Admit does', async () => {
    const { executions, waiting, view } = setup();
    await waiting({ prompt: 'batch one', priority: 'batch' }, 0);
    // Started without the API, which always names a lane.
    executions.seed({ name: 'gen-direct', input: { prompt: 'from a schedule' } });

    expect((await view('gen-direct')).queue).toMatchObject({ lane: 'batch', position: 1 });
  });

  it('shows the same place before Admit as right after Admit put it at the end of its lane', async () => {
    const { queue, registered, waiting, view } = setup();
    const running = await waiting({ prompt: 'holds the slot' }, 0);
    await queue.grant(running, 'main', NOW);
    await waiting({ prompt: 'interactive one' }, 1);
    await waiting({ prompt: 'interactive two' }, 2);
    await waiting({ prompt: 'batch one', priority: 'batch' }, 3);
    const body = { prompt: 'a batch job', priority: 'batch', n: 2 };
    const id = await registered(body);

    const before = (await view(id)).queue;
    // Admit arrives after every entry there.
    await queue.enqueue({
      id,
      lane: 'batch',
      enqueuedAt: NOW + 4,
      expectedRunSeconds: runOf(body),
      token: 't',
    });
    const after = (await view(id)).queue;

    // Behind the batch entry, and the interactive turns the lane rules give before its own.
    expect(before).toMatchObject({ lane: 'batch', position: 3 });
    expect(after).toMatchObject({ lane: before?.lane, position: before?.position });
    // Each of the 3 runs ahead at the mean expected run of the entries waiting: 20 s each before
    // Admit, its own longer run counted in that mean after (no pace observed yet).
    const mean = (20 * 3 + runOf(body)) / 4;
    expect(Date.parse(before?.estimatedStartAt ?? '')).toBe(NOW + 3 * 20_000);
    expect(Date.parse(after?.estimatedStartAt ?? '')).toBeCloseTo(NOW + 3 * mean * 1000, -1);
  });

  it('never shows a place for a generation that has a DashScope task', async () => {
    const { executions, queue, view } = setup();
    const request = generationRequestSchema.parse({ prompt: 'pending at DashScope', priority: 'batch' });
    executions.seed({ name: 'gen-pending', input: request, lastTask: taskState() });
    executions.seed({ name: 'gen-redriven', input: request, lastTask: taskState() });
    await queue.enqueue({
      id: 'gen-redriven',
      lane: 'batch',
      enqueuedAt: NOW,
      expectedRunSeconds: 20,
      token: 't',
    });

    const pending = await view('gen-pending');
    expect(pending).toMatchObject({ status: 'queued', dashscope: { taskId: 'task-1' } });
    expect(pending.queue).toBeUndefined();
    expect((await view('gen-redriven')).queue).toBeUndefined();
  });

  it('never shows a place for a generation that ended before Admit', async () => {
    const { app, executions, registered, view } = setup();
    const canceled = await registered({ prompt: 'never mind' });
    await app.request(`/v1/generations/${canceled}/cancel`, { method: 'POST' });
    executions.seed({
      name: 'gen-failed',
      input: { prompt: 'failed', priority: 'batch' },
      status: 'FAILED',
      error: 'States.Runtime',
    });

    expect(await view(canceled)).toMatchObject({ status: 'canceled' });
    expect((await view(canceled)).queue).toBeUndefined();
    expect((await view('gen-failed')).queue).toBeUndefined();
  });

  it('shows no place before Admit for a generation older than the longest wait', async () => {
    const { executions, view } = setup();
    // Its entry would have been failed with QueueTimeExceeded; the index says so a moment later.
    executions.seed({
      name: 'gen-old',
      input: { prompt: 'waited too long', priority: 'batch' },
      startDate: new Date(NOW - SETTINGS.maxQueueSeconds * 1000),
    });

    expect(await view('gen-old')).toMatchObject({ status: 'queued' });
    expect((await view('gen-old')).queue).toBeUndefined();
  });

  it('shows each waiting generation’s place in a list page, as its GET shows it', async () => {
    const { app, waiting, registered, view, dispatched } = setup();
    const running = await waiting({ prompt: 'holds the slot', priority: 'batch' }, 0);
    await dispatched(NOW - 5000);
    const ids = [
      await waiting({ prompt: 'batch', priority: 'batch' }, 1),
      await waiting({ prompt: 'first' }, 2),
      await registered({ prompt: 'not yet admitted' }),
    ];

    const page = (await (await app.request('/v1/generations?limit=10')).json()) as { data: GenerationView[] };

    const listed = new Map(page.data.map((item) => [item.id, item.queue]));
    for (const id of ids) {
      expect(listed.get(id), id).toBeDefined();
      expect(listed.get(id), id).toEqual((await view(id)).queue);
    }
    expect(listed.has(running)).toBe(true);
    expect(listed.get(running)).toBeUndefined();
  });

  it('takes a canceled generation out of the queue at once', async () => {
    const { app, queue, waiting } = setup();
    const id = await waiting({ prompt: 'never mind' }, 0);

    const response = await app.request(`/v1/generations/${id}/cancel`, { method: 'POST' });

    expect(((await response.json()) as GenerationView).status).toBe('canceled');
    expect(await queue.get(id)).toBeUndefined();
  });
});

describe('estimatedCompletionAt in GET /v1/batches/{id}', () => {
  it('ends a batch after its remaining lines at the account’s observed pace, by the same code the benchmark measures', async () => {
    // Prepare: a 6-line batch, all registered and waiting in the batch lane, nothing else queued.
    const index = new MemoryGenerationIndex();
    const batches = new MemoryBatchIndex(index);
    const queue = new MemoryAdmissionQueue();
    const createdAt = new Date(NOW).toISOString();
    await batches.create({
      id: 'batch-eta',
      createdAt,
      source: 'api',
      priority: 'batch',
      total: 6,
      rejected: 0,
      fingerprint: 'f',
    });
    for (let line = 1; line <= 6; line++) {
      const id = `batch-eta-${line}`;
      await index.register({ id, createdAt, source: 'api', request: { prompt: `line ${line}` } });
      await queue.enqueue({
        id,
        lane: 'batch',
        enqueuedAt: NOW + line,
        expectedRunSeconds: 20,
        token: `t${line}`,
      });
    }
    // The runner frees in 10 s; the account freed a slot every 40 s while full with entries waiting.
    const state = {
      interactiveStreak: 0,
      runnersFreeAt: { main: NOW + 10_000 },
      pace: { main: { freed: 4, overMs: 4 * 40_000 } },
    };
    await queue.writeState(state);
    const deps = {
      executions: new FakeExecutionService(clock, index),
      index,
      batches,
      objects: { getText: async () => '', putText: async () => undefined, putJson: async () => undefined },
      bucket: 'bucket',
      presign: fakePresign,
      clock,
      logger: silentLogger,
      admission: { queue, settings: SETTINGS },
    };

    // Act
    const view = await getBatch('batch-eta', deps);

    // Assess: its last line behind its 5 others at 40 s each, then its own 40 s; as batchCompletionMs says.
    expect(view?.estimatedCompletionAt).toBe(new Date(NOW + 10_000 + 5 * 40_000 + 40_000).toISOString());
    const standing = await queue.standing([]);
    expect(
      batchCompletionMs(
        { now: NOW, lanes: standing.lanes, state: standing.state, settings: SETTINGS },
        { lane: 'batch', waiting: 6, running: 0, ended: 0, typicalRunSeconds: 20 },
      ),
    ).toBe(Date.parse(view?.estimatedCompletionAt ?? ''));
  });
});
