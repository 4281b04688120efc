import { describe, expect, it } from 'vitest';
import { Random } from '../../bench/lib/random.js';
import {
  type AccountLimits,
  aheadIn,
  compareInLane,
  type DispatcherState,
  EMPTY_LANE,
  entriesAhead,
  entriesAheadOfNew,
  estimateStartFromRunners,
  estimateStartMs,
  FIRST_ROUND,
  grantsAhead,
  INITIAL_DISPATCHER_STATE,
  type Lane,
  planGrants,
  type QueueEntry,
  roundAfter,
  roundOf,
  type Slot,
  singlesIn,
  waitingIn,
} from '../../functions/shared/admission.js';

const NOW = 1_000_000;
const one = (name = 'main', depth = 2): AccountLimits => ({ name, depth, submitsPerSecond: 2 });
const entry = (id: string, lane: Lane, enqueuedAt = NOW, expectedRunSeconds = 20): QueueEntry => ({
  id,
  lane,
  enqueuedAt,
  expectedRunSeconds,
});
const slot = (id: string, account: string, extra: Partial<Slot> = {}): Slot => ({
  id,
  account,
  lane: 'batch',
  grantedAt: NOW - 60_000,
  expectedRunSeconds: 20,
  ...extra,
});
const batch = (count: number) => Array.from({ length: count }, (_, i) => entry(`b${i}`, 'batch', NOW + i));
const interactive = (count: number) =>
  Array.from({ length: count }, (_, i) => entry(`i${i}`, 'interactive', NOW + 1000 + i));

describe('planGrants', () => {
  it('grants no more than the free slots of each account', () => {
    const plan = planGrants({
      now: NOW,
      accounts: [one('main', 2)],
      slots: [slot('held', 'main')],
      waiting: { interactive: [], batch: batch(5) },
      state: INITIAL_DISPATCHER_STATE,
    });
    expect(plan.grants.map((grant) => grant.entry.id)).toEqual(['b0']);
  });

  it('grants nothing while every account is at its depth', () => {
    const plan = planGrants({
      now: NOW,
      accounts: [one('main', 1)],
      slots: [slot('held', 'main')],
      waiting: { interactive: interactive(1), batch: [] },
      state: INITIAL_DISPATCHER_STATE,
    });
    expect(plan.grants).toEqual([]);
  });

  it('serves interactive before batch, first in first out within each lane', () => {
    const plan = planGrants({
      now: NOW,
      accounts: [one('main', 3)],
      slots: [],
      waiting: { interactive: interactive(2), batch: batch(3) },
      state: INITIAL_DISPATCHER_STATE,
    });
    expect(plan.grants.map((grant) => grant.entry.id)).toEqual(['i0', 'i1', 'b0']);
  });

  it('gives batch one grant in every batchEvery while interactive keeps arriving', () => {
    const plan = planGrants({
      now: NOW,
      accounts: [one('main', 8)],
      slots: [],
      waiting: { interactive: interactive(10), batch: batch(10) },
      state: INITIAL_DISPATCHER_STATE,
      rules: { batchEvery: 4 },
    });
    expect(plan.grants.map((grant) => grant.entry.id)).toEqual([
      'i0',
      'i1',
      'i2',
      'b0',
      'i3',
      'i4',
      'i5',
      'b1',
    ]);
  });

  it('carries the interactive streak from one run to the next', () => {
    const first = planGrants({
      now: NOW,
      accounts: [one('main', 2)],
      slots: [],
      waiting: { interactive: interactive(5), batch: batch(5) },
      state: INITIAL_DISPATCHER_STATE,
      rules: { batchEvery: 3 },
    });
    // Two grants of 20 s on an idle account: its runner is busy 40 s; full with entries waiting,
    // its pace is timed from now.
    expect(first.state).toEqual({
      interactiveStreak: 2,
      runnersFreeAt: { main: NOW + 40_000 },
      pace: { main: { freed: 0, overMs: 0, fullSince: NOW } },
    });
    const second = planGrants({
      now: NOW,
      accounts: [one('main', 1)],
      slots: [],
      waiting: { interactive: interactive(5).slice(2), batch: batch(5) },
      state: first.state,
      rules: { batchEvery: 3 },
    });
    expect(second.grants.map((grant) => grant.entry.id)).toEqual(['b0']);
  });

  it('spaces grants on one account by more than 1/submitsPerSecond, counting held slots', () => {
    const plan = planGrants({
      now: NOW,
      accounts: [one('main', 3)],
      slots: [slot('held', 'main', { grantedAt: NOW - 100 })],
      waiting: { interactive: [], batch: batch(2) },
      state: INITIAL_DISPATCHER_STATE,
    });
    const times = plan.grants.map((grant) => grant.atMs);
    expect(times[0]).toBeGreaterThanOrEqual(NOW - 100 + 500);
    expect((times[1] as number) - (times[0] as number)).toBeGreaterThanOrEqual(500);
  });

  it('sends each grant to the account whose runner is free first', () => {
    const plan = planGrants({
      now: NOW,
      accounts: [one('a', 2), one('b', 2)],
      slots: [slot('long', 'a', { expectedRunSeconds: 300, startedAt: NOW - 10_000 })],
      waiting: { interactive: [], batch: batch(1) },
      state: INITIAL_DISPATCHER_STATE,
    });
    expect(plan.grants.map((grant) => grant.account)).toEqual(['b']);
  });

  it('spreads a burst over every account', () => {
    const plan = planGrants({
      now: NOW,
      accounts: [one('a', 2), one('b', 2), one('c', 2)],
      slots: [],
      waiting: { interactive: [], batch: batch(10) },
      state: INITIAL_DISPATCHER_STATE,
    });
    const counts = new Map<string, number>();
    for (const grant of plan.grants) counts.set(grant.account, (counts.get(grant.account) ?? 0) + 1);
    expect(Object.fromEntries(counts)).toEqual({ a: 2, b: 2, c: 2 });
  });
});

describe('grantsAhead', () => {
  it('counts the interactive entries ahead and the batch turns among them', () => {
    expect(
      grantsAhead({ lane: 'interactive', aheadInLane: 0, otherLane: 100, state: INITIAL_DISPATCHER_STATE }),
    ).toBe(0);
    // i0 i1 i2 b0 i3: i3 has three interactive and one batch grant before it.
    expect(
      grantsAhead({ lane: 'interactive', aheadInLane: 3, otherLane: 100, state: INITIAL_DISPATCHER_STATE }),
    ).toBe(4);
  });

  it('counts the interactive turns before a batch entry, as far as interactive entries wait', () => {
    // i0 i1 i2 b0 i3 i4 i5 b1: b1 has six interactive and one batch grant before it.
    expect(
      grantsAhead({ lane: 'batch', aheadInLane: 1, otherLane: 100, state: INITIAL_DISPATCHER_STATE }),
    ).toBe(7);
    expect(
      grantsAhead({ lane: 'batch', aheadInLane: 1, otherLane: 2, state: INITIAL_DISPATCHER_STATE }),
    ).toBe(3);
  });

  it('agrees with the order planGrants gives', () => {
    const waiting = { interactive: interactive(7), batch: batch(7) };
    const plan = planGrants({
      now: NOW,
      accounts: [one('main', 14)],
      slots: [],
      waiting,
      state: { interactiveStreak: 1 },
    });
    const order = plan.grants.map((grant) => grant.entry.id);
    for (const lane of ['interactive', 'batch'] as const) {
      waiting[lane].forEach((queued, index) => {
        const ahead = grantsAhead({
          lane,
          aheadInLane: index,
          otherLane: waiting[lane === 'batch' ? 'interactive' : 'batch'].length,
          state: { interactiveStreak: 1 },
        });
        expect(order.indexOf(queued.id), queued.id).toBe(ahead);
      });
    }
  });
});

describe('estimateStartMs', () => {
  it('is now for the next grant on an idle account', () => {
    expect(estimateStartMs({ now: NOW, accounts: [one()], slots: [], ahead: 0, typicalRunSeconds: 20 })).toBe(
      NOW,
    );
  });

  it('adds the held tasks and the grants ahead, spread over the accounts', () => {
    const start = estimateStartMs({
      now: NOW,
      accounts: [one('a'), one('b')],
      slots: [slot('x', 'a', { startedAt: NOW - 5000 })],
      ahead: 3,
      typicalRunSeconds: 20,
    });
    // a is free at +15 s, b now; three grants of 20 s: b +20, a +35, b +40; then the earliest is a at +35 s.
    expect(start).toBe(NOW + 35_000);
  });

  it('gives what handing the runs out one by one gives, at any queue length', () => {
    /** The estimate as the rule states it: each run ahead to the runner free first, one at a time. */
    const oneByOne = (free: number[], ahead: number, runMs: number) => {
      const runners = [...free];
      for (let i = 0; i < ahead; i++) {
        const first = runners.indexOf(Math.min(...runners));
        runners[first] = (runners[first] as number) + runMs;
      }
      return Math.min(...runners);
    };
    const random = new Random(7);
    for (let trial = 0; trial < 300; trial++) {
      const accounts = Array.from({ length: 1 + Math.floor(random.uniform(0, 4)) }, (_, i) => one(`a${i}`));
      const runnersFreeAt = Object.fromEntries(
        accounts.map((account) => [account.name, NOW + Math.round(random.uniform(0, 90_000))]),
      );
      const ahead = Math.floor(random.uniform(0, trial < 290 ? 50 : 5000));
      const typicalRunSeconds = Math.round(random.uniform(1, 60) * 10) / 10;
      const start = estimateStartFromRunners({ now: NOW, accounts, runnersFreeAt, ahead, typicalRunSeconds });
      const expected = oneByOne(Object.values(runnersFreeAt), ahead, typicalRunSeconds * 1000);
      expect(Math.abs(start - expected), `trial ${trial}`).toBeLessThan(1);
    }
  });
});

describe('planGrants’ runners', () => {
  it('tells when each account’s runner is expected free: the rest of its slots, then its grants', () => {
    const plan = planGrants({
      now: NOW,
      accounts: [one('a', 2), one('b', 1)],
      slots: [slot('x', 'a', { startedAt: NOW - 5000 }), slot('y', 'b')],
      waiting: { interactive: [], batch: batch(3) },
      state: INITIAL_DISPATCHER_STATE,
    });

    // a: 15 s left of x, then b0's 20 s; b holds y (not started: all 20 s) and is full.
    expect(plan.grants.map((grant) => grant.account)).toEqual(['a']);
    expect(plan.state.runnersFreeAt).toEqual({ a: NOW + 35_000, b: NOW + 20_000 });
    // The API's estimate from those times is the one from the slots themselves.
    const fromSlots = estimateStartMs({
      now: NOW,
      accounts: [one('a'), one('b')],
      slots: [slot('x', 'a', { startedAt: NOW - 5000 }), slot('y', 'b'), slot('b0', 'a')],
      ahead: 2,
      typicalRunSeconds: 20,
    });
    expect(
      estimateStartFromRunners({
        now: NOW,
        accounts: [one('a'), one('b')],
        runnersFreeAt: plan.state.runnersFreeAt,
        ahead: 2,
        typicalRunSeconds: 20,
      }),
    ).toBe(fromSlots);
  });
});

describe('the lanes’ counters', () => {
  const lane = (tail: number, head: number, soloTail = 0, soloHead = 1) => ({
    tail,
    head,
    soloTail,
    soloHead,
  });

  it('count the entries that came in and have not left, and read a place numbered from the head', () => {
    expect(waitingIn(EMPTY_LANE)).toBe(0);
    expect(waitingIn(lane(7, 3))).toBe(5);
    expect(waitingIn(lane(7, 8))).toBe(0);
    expect(singlesIn(lane(7, 3, 4, 2))).toBe(3);
    expect(aheadIn(lane(7, 3), 3)).toBe(0);
    expect(aheadIn(lane(7, 3), 6)).toBe(3);
  });

  it('put a record without a place at the head, and never past the others waiting', () => {
    expect(aheadIn(lane(7, 3), 1)).toBe(0);
    expect(aheadIn(lane(7, 3), undefined)).toBe(0);
    // A place the counters do not know yet (read a moment stale): at most the last.
    expect(aheadIn(lane(7, 3), 12)).toBe(4);
  });
});

/** Entries of one lane in the store's order, numbered and given rounds as the adapters take them. */
function lineUp(ids: readonly string[], clock = 0, at = NOW) {
  let solos = 0;
  return ids.map((id, index): QueueEntry => {
    const line = /-(\d+)$/.exec(id)?.[1];
    const solo = line === undefined ? ++solos : undefined;
    return {
      ...entry(id, 'batch', at + index),
      order: {
        round: roundOf(clock, line === undefined ? undefined : Number(line)),
        arrival: index + 1,
        ...(solo === undefined ? {} : { solo }),
      },
    };
  });
}

describe('the fair order', () => {
  it('puts line k of a batch k rounds after the lane’s clock, and a generation outside any batch in the next round', () => {
    expect(roundOf(30, 1)).toBe(31);
    expect(roundOf(30, 10)).toBe(40);
    expect(roundOf(30, undefined)).toBe(31);
  });

  it('orders a lane by round, then by arrival, then by id; an entry older than the rounds first', () => {
    const [big1, big2] = lineUp(['batch-big-1', 'batch-big-2']) as [QueueEntry, QueueEntry];
    const [small1] = lineUp(['batch-small-1'], 0, NOW + 60_000) as [QueueEntry];
    const legacy = entry('legacy', 'batch', NOW + 90_000);

    expect([small1, big2, legacy, big1].sort(compareInLane).map((e) => e.id)).toEqual([
      'legacy',
      'batch-big-1',
      'batch-small-1',
      'batch-big-2',
    ]);
  });

  it('interleaves a small batch that comes while a big one waits, one for one, through planGrants', () => {
    // A 50-line batch at round 0; 3 of its lines granted; then a 5-line batch arrives.
    let state: DispatcherState = INITIAL_DISPATCHER_STATE;
    let waiting = lineUp(Array.from({ length: 50 }, (_, i) => `batch-big-${i + 1}`));
    const granted: string[] = [];
    const grantOne = () => {
      const plan = planGrants({
        now: NOW,
        accounts: [one('main', 1)],
        slots: [],
        waiting: { interactive: [], batch: waiting.slice(0, 1) },
        state,
      });
      state = plan.state;
      granted.push(...plan.grants.map((grant) => grant.entry.id));
      waiting = waiting.filter((e) => !granted.includes(e.id));
    };
    for (let i = 0; i < 3; i++) grantOne();
    expect(state.rounds?.batch?.clock).toBe(3);
    const small = lineUp(
      Array.from({ length: 5 }, (_, i) => `batch-small-${i + 1}`),
      state.rounds?.batch?.clock,
      NOW + 60_000,
    );
    waiting = [...waiting, ...small].sort(compareInLane);
    for (let i = 0; i < 10; i++) grantOne();

    expect(granted.slice(3)).toEqual([
      'batch-big-4',
      'batch-small-1',
      'batch-big-5',
      'batch-small-2',
      'batch-big-6',
      'batch-small-3',
      'batch-big-7',
      'batch-small-4',
      'batch-big-8',
      'batch-small-5',
    ]);
    expect(state.rounds?.batch).toEqual({ clock: 8, width: 2, lines: 2 });
  });

  it('serves generations outside any batch first come, first served, each in the round after the clock', () => {
    const singles = lineUp(['a', 'b', 'c'], 7);
    expect(singles.map((e) => e.order?.round)).toEqual([8, 8, 8]);
    const plan = planGrants({
      now: NOW,
      accounts: [one('main', 3)],
      slots: [],
      waiting: { interactive: [], batch: singles },
      state: INITIAL_DISPATCHER_STATE,
    });
    expect(plan.grants.map((grant) => grant.entry.id)).toEqual(['a', 'b', 'c']);
    // No batch line among them: the round is 0 lines wide.
    expect(plan.state.rounds?.batch).toEqual({ clock: 8, width: 0, lines: 0 });
  });

  it('moves a lane’s clock only forward, counting the batch lines of each round', () => {
    const line = (round: number) => ({ round, arrival: 1 });
    const single = (round: number) => ({ round, arrival: 1, solo: 1 });
    let round = roundAfter(FIRST_ROUND, line(4));
    expect(round).toEqual({ clock: 4, width: 0, lines: 1 });
    round = roundAfter(round, line(4));
    round = roundAfter(round, single(4));
    expect(round).toEqual({ clock: 4, width: 2, lines: 2 });
    // A slot given back unused waits again at its first round: granted, it moves nothing back.
    expect(roundAfter(round, line(2))).toEqual({ clock: 4, width: 3, lines: 3 });
    expect(roundAfter(round, line(5))).toEqual({ clock: 5, width: 2, lines: 1 });
  });

  it('leaves the state without rounds when no entry granted has one', () => {
    const plan = planGrants({
      now: NOW,
      accounts: [one()],
      slots: [],
      waiting: { interactive: [], batch: batch(1) },
      state: INITIAL_DISPATCHER_STATE,
    });
    expect(plan.state.rounds).toBeUndefined();
  });
});

describe('a position in the fair order', () => {
  const counters = (waiting: number, singles = 0) => ({
    tail: waiting,
    head: 1,
    soloTail: singles,
    soloHead: 1,
  });

  it('is exact for a generation outside any batch in a lane without batches', () => {
    const lane = counters(5, 5);
    const round = { clock: 2, width: 0, lines: 0 };
    expect([1, 2, 5].map((solo) => entriesAhead({ round: 3, arrival: solo, solo }, lane, round))).toEqual([
      0, 1, 4,
    ]);
  });

  it('counts a line’s rounds ahead, as wide as the batches sharing the lane, behind every single', () => {
    // A 5,000-line batch alone at round 30: line 100 has 69 of its own lines ahead of it.
    expect(
      entriesAhead({ round: 100, arrival: 100 }, counters(4970), { clock: 30, width: 1, lines: 1 }),
    ).toBe(69);
    // With a 10-line batch beside it (2 lines a round) and 3 singles waiting: line 3 of the small one.
    const lane = counters(4983, 3);
    const shared = { clock: 31, width: 2, lines: 2 };
    expect(entriesAhead({ round: 33, arrival: 4973 }, lane, shared)).toBe(3 + 2);
    // A single: the two singles before it, and the lines of the next round.
    expect(entriesAhead({ round: 32, arrival: 4983, solo: 3 }, lane, shared)).toBe(2 + 2);
    // Never more than the others waiting.
    expect(entriesAhead({ round: 5000, arrival: 5000 }, lane, shared)).toBe(4982);
  });

  it('shows a generation not in the queue yet where Admit will put it', () => {
    const lane = counters(4983, 3);
    const shared = { clock: 31, width: 2, lines: 2 };
    expect(entriesAheadOfNew(lane, shared)).toBe(3 + 2);
    expect(entriesAheadOfNew(lane, shared, 4)).toBe(3 + 2 * 3);
    expect(entriesAheadOfNew(EMPTY_LANE)).toBe(0);
  });

  it('puts an entry without an order at the head', () => {
    expect(entriesAhead(undefined, counters(10))).toBe(0);
  });
});
