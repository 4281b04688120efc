import type { Context } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { dispatch, dispatchInTurn } from '../../functions/dispatch/dispatch.js';
import { createDispatchHandler } from '../../functions/dispatch/handler.js';
import type {
  AdmissionGrant,
  AdmissionSettings,
  ExecutionResumer,
  Lane,
} from '../../functions/shared/admission.js';
import { WORKFLOW_ERROR } from '../../functions/shared/errors.js';
import { FINAL_STAGE } from '../../functions/shared/generation-index.js';
import { silentLogger } from '../../functions/shared/logger.js';
import { MemoryAdmissionQueue, MemoryDispatcherLease } from '../../local/memory-admission.js';
import { MemoryGenerationIndex } from '../fakes/memory-index.js';

const T0 = Date.UTC(2026, 10, 30, 12, 0, 0);
const SETTINGS: AdmissionSettings = {
  accounts: [{ name: 'main', depth: 2, submitsPerSecond: 2 }],
  batchEvery: 4,
  maxQueueSeconds: 3600,
};

/** Records every resume and failure; `waiting` says whose executions still wait on their token. */
class RecordingResumer implements ExecutionResumer {
  readonly resumed: { token: string; grant: AdmissionGrant }[] = [];
  readonly failed: { token: string; error: string; cause: string }[] = [];
  readonly gone = new Set<string>();
  beforeResume?: (token: string) => Promise<void>;

  async resume(token: string, grant: AdmissionGrant) {
    await this.beforeResume?.(token);
    if (this.gone.has(token)) return 'gone' as const;
    this.resumed.push({ token, grant });
    return 'resumed' as const;
  }

  async fail(token: string, error: string, cause: string) {
    this.failed.push({ token, error, cause });
    return 'failed' as const;
  }
}

function setup(settings: AdmissionSettings = SETTINGS) {
  let now = T0;
  const queue = new MemoryAdmissionQueue();
  const resumer = new RecordingResumer();
  const index = new MemoryGenerationIndex();
  const sleeps: number[] = [];
  const deps = {
    queue,
    resumer,
    index,
    settings,
    clock: { now: () => now },
    sleep: async (ms: number) => {
      sleeps.push(ms);
      now += ms;
    },
    logger: silentLogger,
  };
  const enqueue = (id: string, lane: Lane = 'batch', at = now) =>
    queue.enqueue({ id, lane, enqueuedAt: at, expectedRunSeconds: 20, token: `token-${id}` });
  return { deps, queue, resumer, index, sleeps, enqueue, advance: (ms: number) => (now += ms) };
}

describe('dispatch', () => {
  it('grants as many slots as the account’s depth and resumes each execution with its account', async () => {
    const { deps, queue, resumer, enqueue } = setup();
    for (const id of ['a', 'b', 'c']) await enqueue(id);

    const report = await dispatch(deps);

    expect(report.granted).toEqual([
      { id: 'a', account: 'main' },
      { id: 'b', account: 'main' },
    ]);
    expect(resumer.resumed.map((r) => [r.token, r.grant.account])).toEqual([
      ['token-a', 'main'],
      ['token-b', 'main'],
    ]);
    expect((await queue.waiting('batch', 10)).map((e) => e.id)).toEqual(['c']);
  });

  it('records the account’s pace across runs: the slots freed while it was full with entries waiting', async () => {
    const { deps, queue, enqueue, advance } = setup();
    for (const id of ['a', 'b', 'c', 'd']) await enqueue(id);

    // Grants a and b (b 600 ms later): full, with c and d waiting.
    await dispatch(deps);
    expect((await queue.readState()).pace).toEqual({ main: { freed: 0, overMs: 0, fullSince: T0 } });
    advance(30_000 - 600);
    await queue.release('a');
    await dispatch(deps);

    // a's slot freed 30 s after the run that filled the account; timed on from this run.
    expect((await queue.readState()).pace).toEqual({
      main: { freed: 1, overMs: 30_000, fullSince: T0 + 30_000 },
    });
  });

  it('writes the state without a grant when only the pace changed: a backlog that ended is no longer timed', async () => {
    const { deps, queue, enqueue, advance } = setup();
    for (const id of ['a', 'b', 'c']) await enqueue(id);
    await dispatch(deps);
    advance(10_000 - 600);
    // c is cancelled while it waits, then a ends.
    await queue.release('c');
    await queue.release('a');

    const report = await dispatch(deps);

    expect(report.granted).toEqual([]);
    expect((await queue.readState()).pace).toEqual({ main: { freed: 1, overMs: 10_000 } });
  });

  it('spaces two grants on one account by more than half a second (2 submits/s)', async () => {
    const { deps, sleeps, enqueue } = setup();
    await enqueue('a');
    await enqueue('b');

    await dispatch(deps);

    expect(sleeps).toHaveLength(1);
    expect(sleeps[0]).toBeGreaterThanOrEqual(500);
  });

  it('skips an entry taken out of the queue (a cancel) between the plan and its grant', async () => {
    const { deps, queue, resumer, enqueue } = setup();
    await enqueue('a');
    await enqueue('b');
    resumer.beforeResume = async (token) => {
      if (token === 'token-a') await queue.release('b');
    };

    const report = await dispatch(deps);

    expect(report.granted.map((g) => g.id)).toEqual(['a']);
    expect(resumer.resumed.map((r) => r.token)).toEqual(['token-a']);
  });

  it('gives the slot back at once when the execution no longer waits (stopped meanwhile)', async () => {
    const { deps, queue, resumer, enqueue } = setup();
    await enqueue('stopped');
    resumer.gone.add('token-stopped');

    const report = await dispatch(deps);

    expect(report.gone).toEqual(['stopped']);
    expect(await queue.slots('main')).toEqual([]);
  });

  it('fails an entry that waited past maxQueueSeconds with QueueTimeExceeded, and takes it out', async () => {
    const { deps, queue, resumer, enqueue, advance } = setup({
      ...SETTINGS,
      accounts: [{ name: 'main', depth: 1, submitsPerSecond: 2 }],
    });
    await enqueue('running');
    await dispatch(deps);
    await enqueue('old');
    advance(3600 * 1000);

    const report = await dispatch(deps);

    expect(report.expired).toEqual(['old']);
    expect(resumer.failed).toEqual([
      { token: 'token-old', error: WORKFLOW_ERROR.queueTimeExceeded, cause: expect.stringMatching(/3600 s/) },
    ]);
    expect(await queue.get('old')).toBeUndefined();
  });

  it('resumes again an execution granted a minute ago that never submitted (a crash mid-grant)', async () => {
    const { deps, queue, resumer, enqueue, advance } = setup();
    await enqueue('a');
    // The grant is recorded, the resume never happened.
    await queue.grant('a', 'main', T0);
    advance(61_000);

    const report = await dispatch(deps);

    expect(report.regranted).toEqual(['a']);
    expect(resumer.resumed).toEqual([
      { token: 'token-a', grant: expect.objectContaining({ account: 'main' }) },
    ]);
  });

  it('does not resume again a slot whose execution submitted', async () => {
    const { deps, queue, resumer, enqueue, advance } = setup();
    await enqueue('a');
    await dispatch(deps);
    await queue.note('a', { submittedAt: T0 + 1000 });
    advance(120_000);

    const report = await dispatch(deps);

    expect(report.regranted).toEqual([]);
    expect(resumer.resumed).toHaveLength(1);
  });

  it('frees an old slot whose generation the index shows ended (its release was lost)', async () => {
    const { deps, queue, index, enqueue, advance } = setup({
      ...SETTINGS,
      accounts: [{ name: 'main', depth: 1, submitsPerSecond: 2 }],
    });
    await enqueue('lost');
    await dispatch(deps);
    await queue.note('lost', { submittedAt: T0 });
    index.seed({
      id: 'lost',
      createdAt: new Date(T0).toISOString(),
      updatedAt: new Date(T0).toISOString(),
      source: 'api',
      status: 'succeeded',
      stage: FINAL_STAGE,
    });
    await enqueue('next');
    advance(601_000);

    const report = await dispatch(deps);

    expect(report.freed).toEqual(['lost']);
    expect(report.granted.map((g) => g.id)).toEqual(['next']);
  });

  it('keeps a slot whose generation still runs, however old', async () => {
    const { deps, queue, enqueue, advance } = setup({
      ...SETTINGS,
      accounts: [{ name: 'main', depth: 1, submitsPerSecond: 2 }],
    });
    await enqueue('long');
    await dispatch(deps);
    await queue.note('long', { submittedAt: T0 });
    await enqueue('next');
    advance(3_000_000);

    const report = await dispatch(deps);

    expect(report.freed).toEqual([]);
    expect(report.granted).toEqual([]);
  });

  it('serves interactive first and remembers the streak for batch’s share', async () => {
    const { deps, queue, resumer, enqueue } = setup({
      ...SETTINGS,
      accounts: [{ name: 'main', depth: 3, submitsPerSecond: 100 }],
    });
    for (const id of ['b1', 'b2']) await enqueue(id, 'batch');
    for (const id of ['i1', 'i2', 'i3', 'i4']) await enqueue(id, 'interactive');

    await dispatch(deps);

    expect(resumer.resumed.map((r) => r.token)).toEqual(['token-i1', 'token-i2', 'token-i3']);
    // And when the runner is expected free after the three grants of 20 s (what the API's estimate reads).
    // And the interactive lane's clock at the round of its grants (no batch line among them).
    expect(await queue.readState()).toEqual({
      interactiveStreak: 3,
      runnersFreeAt: { main: T0 + 60_000 },
      rounds: { interactive: { clock: 1, width: 0, lines: 0 } },
      // Full with entries waiting: its pace is timed from this run on.
      pace: { main: { freed: 0, overMs: 0, fullSince: T0 } },
    });
    for (const id of ['i1', 'i2', 'i3']) await queue.release(id);
    await dispatch(deps);
    expect(resumer.resumed.map((r) => r.token).slice(3)).toEqual(['token-b1', 'token-i4', 'token-b2']);
  });
});

describe('dispatch in turn (the Lambda handler)', () => {
  it('hands the lease off when its invocation is running out of time: the next kick runs at once', async () => {
    const { deps, enqueue, resumer } = setup();
    const lease = new MemoryDispatcherLease();
    await enqueue('a');
    const handle = createDispatchHandler({ ...deps, lease });
    // A kick came during the run, but 15 s are left of the invocation: less than a run may need.
    resumer.beforeResume = async () => {
      await lease.request(T0);
    };

    const report = await handle({}, { getRemainingTimeInMillis: () => 15_000 } as Context);

    expect(report.outcome).toBe('handedOff');
    expect(report.runs).toHaveLength(1);
    expect(await lease.request(T0)).toBe(false);
    expect(await lease.take('next', T0, T0 + 30_000)).toBe(true);
  });

  it('goes on while kicks come and time is left, then releases', async () => {
    const { deps, enqueue, resumer } = setup();
    const lease = new MemoryDispatcherLease();
    await enqueue('a');
    let kicks = 2;
    resumer.beforeResume = async () => {
      if (kicks-- > 0) await lease.request(T0);
    };
    const handle = createDispatchHandler({ ...deps, lease });

    const report = await handle({}, { getRemainingTimeInMillis: () => 50_000 } as Context);

    expect(report.outcome).toBe('released');
    expect(report.runs).toHaveLength(2);
    expect(await lease.take('next', T0, T0 + 30_000)).toBe(true);
  });

  it('hands the lease off when a run fails, and fails', async () => {
    const { deps, enqueue } = setup();
    const lease = new MemoryDispatcherLease();
    await enqueue('a');
    const failing = {
      ...deps,
      queue: Object.assign(new MemoryAdmissionQueue(), {
        waiting: async () => {
          throw new Error('Admission queue query failed: ServiceUnavailable');
        },
      }),
    };

    await expect(dispatchInTurn({ ...failing, lease })).rejects.toThrow(/ServiceUnavailable/);
    expect(await lease.take('next', T0, T0 + 30_000)).toBe(true);
  });
});
