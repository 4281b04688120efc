import { describe, expect, it } from 'vitest';
import { Random } from '../../bench/lib/random.js';
import {
  type AccountLimits,
  type AccountPace,
  type DispatcherState,
  EMPTY_LANE,
  INITIAL_DISPATCHER_STATE,
  type LaneCounters,
  PACE_MEMORY,
  PACE_OUTLIER,
  paceAfter,
  paceIntervalMs,
  planGrants,
  type QueueEntry,
  runIntervalMs,
  type Slot,
  startFromRunners,
} from '../../functions/shared/admission.js';
import {
  batchCompletionMs,
  lastLineAhead,
  type QueueView,
  queuePlace,
} from '../../functions/shared/queue-estimate.js';

/**
 * The estimates of the queue (functions/shared/queue-estimate.ts) and the pace they read, which
 * the dispatcher's plan records (`paceAfter` in planGrants): deterministic, no clock.
 */
const NOW = 1_000_000;
const account = (name = 'main', depth = 2, submitsPerSecond = 2): AccountLimits => ({
  name,
  depth,
  submitsPerSecond,
});
const lane = (waiting: number, singles = 0): LaneCounters => ({
  tail: waiting,
  head: 1,
  soloTail: singles,
  soloHead: 1,
});
const paceOf = (intervalMs: number, fullSince?: number): AccountPace => ({
  freed: 10,
  overMs: 10 * intervalMs,
  ...(fullSince === undefined ? {} : { fullSince }),
});
const viewOf = (state: DispatcherState, batch: LaneCounters, accounts = [account()]): QueueView => ({
  now: NOW,
  lanes: { interactive: EMPTY_LANE, batch },
  state,
  settings: { accounts, batchEvery: 4 },
});

describe('paceAfter: an account’s pace, as the dispatcher’s runs see it', () => {
  it('times nothing until a run leaves the account full with entries waiting', () => {
    expect(paceAfter(undefined, { now: NOW, freed: 1, fullWithBacklog: false })).toBeUndefined();
    expect(paceAfter(undefined, { now: NOW, freed: 2, fullWithBacklog: true })).toEqual({
      freed: 0,
      overMs: 0,
      fullSince: NOW,
    });
  });

  it('counts the slots freed since over the time since, and times on from that run', () => {
    const first = paceAfter(
      { freed: 0, overMs: 0, fullSince: NOW },
      { now: NOW + 30_000, freed: 1, fullWithBacklog: true },
    );
    expect(first).toEqual({ freed: 1, overMs: 30_000, fullSince: NOW + 30_000 });

    // Two slots freed at once, 20 s later: 10 s each, the earlier observation weighed down.
    const second = paceAfter(first, { now: NOW + 50_000, freed: 2, fullWithBacklog: true });
    const decay = (1 - 1 / PACE_MEMORY) ** 2;
    expect(second?.freed).toBeCloseTo(decay + 2, 9);
    expect(second?.overMs).toBeCloseTo(30_000 * decay + 20_000, 6);
    expect(second?.fullSince).toBe(NOW + 50_000);
  });

  it('keeps timing while the account stays full, and keeps the pace but stops timing once nothing waits', () => {
    const timing = { freed: 4, overMs: 80_000, fullSince: NOW };

    expect(paceAfter(timing, { now: NOW + 5000, freed: 0, fullWithBacklog: true })).toEqual(timing);
    expect(paceAfter(timing, { now: NOW + 25_000, freed: 1, fullWithBacklog: false })).toEqual({
      freed: 4 * (1 - 1 / PACE_MEMORY) + 1,
      overMs: 80_000 * (1 - 1 / PACE_MEMORY) + 25_000,
    });
    // A slot that frees with nothing waiting is not timed: the arrivals set that pace.
    expect(
      paceAfter({ freed: 4, overMs: 80_000 }, { now: NOW + 3_600_000, freed: 2, fullWithBacklog: false }),
    ).toEqual({
      freed: 4,
      overMs: 80_000,
    });
  });

  it('follows a change of pace within a few times PACE_MEMORY slots', () => {
    let pace: AccountPace | undefined = paceAfter(undefined, { now: 0, freed: 2, fullWithBacklog: true });
    let now = 0;
    for (const intervalMs of [10_000, 40_000]) {
      for (let i = 0; i < 6 * PACE_MEMORY; i++) {
        now += intervalMs;
        pace = paceAfter(pace, { now, freed: 1, fullWithBacklog: true });
      }
    }

    expect(paceIntervalMs(pace)).toBeGreaterThan(40_000 * 0.99);
    expect(paceIntervalMs(pace)).toBeLessThanOrEqual(40_000);
  });

  it('counts a slot found freed late (a lost release) at most PACE_OUTLIER times the known pace', () => {
    const after = paceAfter(
      { freed: 10, overMs: 200_000, fullSince: NOW },
      { now: NOW + 600_000, freed: 1, fullWithBacklog: true },
    );

    expect(after?.overMs).toBeCloseTo(200_000 * (1 - 1 / PACE_MEMORY) + PACE_OUTLIER * 20_000, 6);
  });
});

describe('planGrants’ pace', () => {
  const entry = (i: number): QueueEntry => ({
    id: `e${i}`,
    lane: 'batch',
    enqueuedAt: NOW + i,
    expectedRunSeconds: 20,
  });
  const slot = (id: string, extra: Partial<Slot> = {}): Slot => ({
    id,
    account: 'main',
    lane: 'batch',
    grantedAt: NOW,
    expectedRunSeconds: 20,
    ...extra,
  });

  it('times the slots freed while the account was full with entries waiting, and runs its runners at that pace', () => {
    const filled = planGrants({
      now: NOW,
      accounts: [account()],
      slots: [],
      waiting: { interactive: [], batch: [0, 1, 2].map(entry) },
      state: INITIAL_DISPATCHER_STATE,
    });
    expect(filled.state.pace).toEqual({ main: { freed: 0, overMs: 0, fullSince: NOW } });

    // e0 ended after 30 s (not the 20 s the model said); e1 started then.
    const next = planGrants({
      now: NOW + 30_000,
      accounts: [account()],
      slots: [slot('e1', { startedAt: NOW + 30_000 })],
      waiting: { interactive: [], batch: [2, 3].map(entry) },
      state: filled.state,
    });

    expect(next.grants.map((grant) => grant.entry.id)).toEqual(['e2']);
    expect(next.state.pace).toEqual({ main: { freed: 1, overMs: 30_000, fullSince: NOW + 30_000 } });
    // e1's 30 s from its start, then e2's 30 s: at the pace, not the model's 20 s each.
    expect(next.state.runnersFreeAt).toEqual({ main: NOW + 90_000 });
  });

  it('stops timing when the heads show nothing waits after the grants', () => {
    const plan = planGrants({
      now: NOW,
      accounts: [account()],
      slots: [],
      // Two free slots, two entries: the heads hold no third.
      waiting: { interactive: [], batch: [0, 1].map(entry) },
      state: { interactiveStreak: 0, pace: { main: { freed: 3, overMs: 60_000, fullSince: NOW - 1 } } },
    });

    expect(plan.state.pace).toEqual({
      main: { freed: 3 * (1 - 1 / PACE_MEMORY) ** 2 + 2, overMs: 60_000 * (1 - 1 / PACE_MEMORY) ** 2 + 1 },
    });
  });
});

describe('runIntervalMs and startFromRunners', () => {
  it('times a run by the pace once observed, the model before, never under the submit spacing', () => {
    expect(runIntervalMs(account(), undefined, 20)).toBe(20_000);
    expect(runIntervalMs(account(), paceOf(31_000), 20)).toBe(31_000);
    // The emulator's 0.1-s runs still go out at most 2 a second (+100 ms).
    expect(runIntervalMs(account(), undefined, 0.1)).toBe(600);
    expect(runIntervalMs(account(), paceOf(50), 20)).toBe(600);
  });

  it('gives what handing the runs out one by one gives, each runner at its own pace', () => {
    const oneByOne = (free: number[], runMs: number[], ahead: number) => {
      const runners = [...free];
      for (let i = 0; i < ahead; i++) {
        const first = runners.indexOf(Math.min(...runners));
        runners[first] = (runners[first] as number) + (runMs[first] as number);
      }
      return Math.min(...runners);
    };
    const random = new Random(23);
    for (let trial = 0; trial < 200; trial++) {
      const accounts = Array.from({ length: 1 + Math.floor(random.uniform(0, 4)) }, (_, i) =>
        account(`a${i}`),
      );
      const runnersFreeAt = Object.fromEntries(
        accounts.map((each) => [each.name, NOW + Math.round(random.uniform(0, 90_000))]),
      );
      const pace = Object.fromEntries(
        accounts.map((each) => [each.name, paceOf(Math.round(random.uniform(1000, 60_000)))]),
      );
      const ahead = Math.floor(random.uniform(0, trial < 190 ? 60 : 3000));

      const { startMs } = startFromRunners({
        now: NOW,
        accounts,
        runnersFreeAt,
        pace,
        ahead,
        typicalRunSeconds: 20,
      });

      const expected = oneByOne(
        accounts.map((each) => runnersFreeAt[each.name] as number),
        accounts.map((each) => paceIntervalMs(pace[each.name]) as number),
        ahead,
      );
      expect(Math.abs(startMs - expected), `trial ${trial}`).toBeLessThan(1);
    }
  });
});

describe('queuePlace', () => {
  it('starts a place behind P grants P runs at the observed pace after the runner frees, whatever its own estimate', () => {
    const state = {
      interactiveStreak: 0,
      runnersFreeAt: { main: NOW + 10_000 },
      pace: { main: paceOf(30_000) },
    };

    const place = queuePlace(viewOf(state, lane(50)), { lane: 'batch', aheadInLane: 10, runSeconds: 4 });

    expect(place).toEqual({
      lane: 'batch',
      position: 10,
      estimatedStartAt: new Date(NOW + 10_000 + 10 * 30_000).toISOString(),
    });
  });

  it('spreads the grants over the accounts, each at its pace', () => {
    const accounts = [account('a'), account('b')];
    const state = {
      interactiveStreak: 0,
      runnersFreeAt: { a: NOW, b: NOW },
      pace: { a: paceOf(20_000), b: paceOf(60_000) },
    };

    // a takes 3 runs for each of b's: 3 every 60 s, 4 starts a minute between them.
    const place = queuePlace(viewOf(state, lane(100), accounts), {
      lane: 'batch',
      aheadInLane: 40,
      runSeconds: 20,
    });

    expect(Date.parse(place.estimatedStartAt) - NOW).toBe(600_000);
  });
});

describe('batchCompletionMs', () => {
  const paced = (width: number) => ({
    interactiveStreak: 0,
    runnersFreeAt: { main: NOW + 20_000 },
    pace: { main: paceOf(30_000) },
    rounds: { batch: { clock: 5, width, lines: 1 } },
  });
  const typicalRunSeconds = 20;

  it('ends a batch alone in its lane after its remaining lines, at the pace', () => {
    const endMs = batchCompletionMs(viewOf(paced(1), lane(100)), {
      lane: 'batch',
      waiting: 100,
      running: 1,
      ended: 4,
      typicalRunSeconds,
    });

    // Its last line behind its 99 others, once the runner frees; then its own run.
    expect(endMs).toBe(NOW + 20_000 + 99 * 30_000 + 30_000);
  });

  it('gives a batch its fair share of the lane: one line in `width` rounds, one more before it joined', () => {
    const shared = viewOf(paced(3), lane(1000));

    expect(lastLineAhead(shared, 'batch', 100)).toBe(3 * 99);
    expect(lastLineAhead(shared, 'batch', 100, false)).toBe(4 * 99);
    // Never behind more than the lane holds, nor less than its own lines Admit has not reached.
    expect(lastLineAhead(viewOf(paced(3), lane(150)), 'batch', 100)).toBe(149);
    expect(lastLineAhead(viewOf(paced(3), lane(10)), 'batch', 100)).toBe(99);
    // The singles waiting go first.
    expect(lastLineAhead(viewOf(paced(1), lane(1000, 7)), 'batch', 100)).toBe(7 + 99);
  });

  it('ends a batch with nothing waiting when its running lines’ runner frees, and a finished one never', () => {
    const view = viewOf(paced(1), lane(0));

    expect(batchCompletionMs(view, { lane: 'batch', waiting: 0, running: 1, typicalRunSeconds })).toBe(
      NOW + 20_000,
    );
    expect(
      batchCompletionMs(view, { lane: 'batch', waiting: 0, running: 0, typicalRunSeconds }),
    ).toBeUndefined();
  });

  it('times the runs by the model before any pace was observed', () => {
    const endMs = batchCompletionMs(viewOf({ interactiveStreak: 0 }, lane(10)), {
      lane: 'batch',
      waiting: 10,
      running: 0,
      ended: 0,
      typicalRunSeconds,
    });

    expect(endMs).toBe(NOW + 10 * 20_000);
  });
});

/**
 * One account (depth 2) whose tasks take 30 s while the run-time model says 20 s, a backlog of
 * `lines` entries, and the dispatcher run 500 ms after each task ends: the real planGrants, in a
 * loop of whole numbers (no clock). Returns every estimate the API would have shown for the last
 * entry's start and for the batch's end, with when each was read, and the true ones.
 */
function backlog(lines: number) {
  const runMs = 30_000;
  const settings = { accounts: [account()], batchEvery: 4 };
  const entries = Array.from(
    { length: lines },
    (_, i): QueueEntry => ({ id: `e${i}`, lane: 'batch', enqueuedAt: i, expectedRunSeconds: 20 }),
  );
  const startOf = new Map<string, number>();
  let runnerFreeAt = 0;
  let state: DispatcherState = INITIAL_DISPATCHER_STATE;
  let slots: Slot[] = [];
  let granted = 0;
  const reads: { atMs: number; lastStartMs: number; endMs: number | undefined }[] = [];
  for (let now = 0; granted < lines; ) {
    const waiting = entries.slice(granted, granted + 3);
    const plan = planGrants({
      now,
      accounts: settings.accounts,
      slots,
      waiting: { interactive: [], batch: waiting },
      state,
    });
    for (const grant of plan.grants) {
      // Submitted at once; DashScope runs its tasks one after the other.
      const startMs = Math.max(grant.atMs, runnerFreeAt);
      runnerFreeAt = startMs + runMs;
      startOf.set(grant.entry.id, startMs);
      slots.push({
        id: grant.entry.id,
        account: 'main',
        lane: 'batch',
        grantedAt: grant.atMs,
        expectedRunSeconds: 20,
      });
      granted += 1;
    }
    state = plan.state;
    const left = lines - granted;
    const view = { now, lanes: { interactive: EMPTY_LANE, batch: lane(left) }, state, settings };
    if (left > 0) {
      const place = queuePlace(view, { lane: 'batch', aheadInLane: left - 1, runSeconds: 20 });
      const endMs = batchCompletionMs(view, {
        lane: 'batch',
        waiting: left,
        running: 1,
        typicalRunSeconds: 20,
      });
      reads.push({ atMs: now, lastStartMs: Date.parse(place.estimatedStartAt), endMs });
    }
    // The first task of the slots ends; Poll notes the next one's start; the dispatcher runs 500 ms later.
    const endedMs = Math.min(...slots.map((each) => (startOf.get(each.id) as number) + runMs));
    slots = slots
      .filter((each) => (startOf.get(each.id) as number) + runMs > endedMs)
      .map((each) =>
        (startOf.get(each.id) as number) <= endedMs ? { ...each, startedAt: startOf.get(each.id) } : each,
      );
    now = endedMs + 500;
  }
  const lastStartMs = startOf.get(`e${lines - 1}`) as number;
  return { reads, lastStartMs, endMs: lastStartMs + runMs };
}

describe('the estimates under a backlog', () => {
  it('hold within 2 % of the time left once the dispatcher has seen a task end, where the model alone is a third off', () => {
    const { reads, lastStartMs, endMs } = backlog(60);
    const [first, ...observed] = reads;
    const errorOf = (estimate: number, atMs: number, truth: number) =>
      Math.abs(estimate - truth) / (truth - atMs);

    // Before any task ended: the model's 20 s a run.
    expect(errorOf(first?.lastStartMs ?? 0, 0, lastStartMs)).toBeGreaterThan(0.3);
    expect(observed.length).toBeGreaterThan(50);
    for (const read of observed) {
      expect(errorOf(read.lastStartMs, read.atMs, lastStartMs), `start, read at ${read.atMs}`).toBeLessThan(
        0.02,
      );
      expect(errorOf(read.endMs ?? 0, read.atMs, endMs), `end, read at ${read.atMs}`).toBeLessThan(0.02);
    }
  });
});
