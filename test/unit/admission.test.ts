import { describe, expect, it } from 'vitest';
import { Random } from '../../bench/lib/random.js';
import {
  type AccountLimits,
  aheadIn,
  estimateStartFromRunners,
  estimateStartMs,
  grantsAhead,
  INITIAL_DISPATCHER_STATE,
  type Lane,
  planGrants,
  type QueueEntry,
  type Slot,
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
    // Two grants of 20 s on an idle account: its runner is busy 40 s.
    expect(first.state).toEqual({ interactiveStreak: 2, runnersFreeAt: { main: NOW + 40_000 } });
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
  it('count from the head to the tail, and an entry’s place from the head', () => {
    expect(waitingIn({ tail: 0, head: 1 })).toBe(0);
    expect(waitingIn({ tail: 7, head: 3 })).toBe(5);
    expect(waitingIn({ tail: 7, head: 8 })).toBe(0);
    expect(aheadIn({ tail: 7, head: 3 }, 3)).toBe(0);
    expect(aheadIn({ tail: 7, head: 3 }, 6)).toBe(3);
  });

  it('put an entry below the head, or without a number, at the head, and never past the tail', () => {
    expect(aheadIn({ tail: 7, head: 3 }, 1)).toBe(0);
    expect(aheadIn({ tail: 7, head: 3 }, undefined)).toBe(0);
    // A number the counters do not know yet (read a moment stale): at most the last.
    expect(aheadIn({ tail: 7, head: 3 }, 12)).toBe(4);
  });
});
