import { describe, expect, it } from 'vitest';
import { oldestWaitingPastEstimate, watchingTheQueue } from '../../functions/dispatch/handler.js';
import type {
  AdmissionQueue,
  AdmissionSettings,
  Lane,
  Slot,
  WaitingEntry,
} from '../../functions/shared/admission.js';
import { silentLogger } from '../../functions/shared/logger.js';
import type { Metrics } from '../../functions/shared/metrics.js';

/**
 * `OldestWaitingSeconds`, which the queue's alarm reads: how far the oldest generation waiting for
 * admission is past its estimated start (the first slot's expected end), measured on the
 * dispatcher's one-minute sweep.
 */
const NOW = Date.parse('2026-01-01T12:00:00Z');
const MINUTE = 60_000;
const settings: AdmissionSettings = {
  accounts: [{ name: 'default', depth: 2, submitsPerSecond: 2 }],
  batchEvery: 4,
  maxQueueSeconds: 604_800,
};

function queueOf(waiting: Partial<Record<Lane, WaitingEntry[]>>, slots: Slot[]): AdmissionQueue {
  return {
    waiting: async (lane: Lane, limit: number) => (waiting[lane] ?? []).slice(0, limit),
    slots: async (account: string) => slots.filter((slot) => slot.account === account),
  } as Partial<AdmissionQueue> as AdmissionQueue;
}

const entry = (id: string, lane: Lane, waitedMs: number): WaitingEntry => ({
  id,
  lane,
  enqueuedAt: NOW - waitedMs,
  expectedRunSeconds: 60,
  token: `token-${id}`,
});

const slot = (id: string, startedAgoMs: number | undefined, grantedAgoMs: number): Slot => ({
  id,
  account: 'default',
  lane: 'interactive',
  grantedAt: NOW - grantedAgoMs,
  expectedRunSeconds: 60,
  ...(startedAgoMs === undefined ? {} : { startedAt: NOW - startedAgoMs }),
});

describe('the oldest waiting generation, past its estimated start', () => {
  it('is 0 when nothing waits', async () => {
    expect(await oldestWaitingPastEstimate(queueOf({}, [slot('a', 0, 0)]), settings, NOW)).toBe(0);
  });

  it('is 0 for a long queue behind slots whose tasks are running on time', async () => {
    const queue = queueOf({ batch: [entry('w', 'batch', 300 * MINUTE)] }, [
      slot('a', 30_000, 31_000),
      slot('b', undefined, 20_000),
    ]);
    expect(await oldestWaitingPastEstimate(queue, settings, NOW)).toBe(0);
  });

  it('counts from the first slot’s expected end when every slot’s task overran', async () => {
    // Both slots' tasks should have ended 61 and 91 minutes ago; the head has waited 2 hours.
    const queue = queueOf(
      { interactive: [entry('i', 'interactive', 30 * MINUTE)], batch: [entry('b', 'batch', 120 * MINUTE)] },
      [slot('a', 62 * MINUTE, 63 * MINUTE), slot('b', 92 * MINUTE, 93 * MINUTE)],
    );
    expect(await oldestWaitingPastEstimate(queue, settings, NOW)).toBe(91 * 60);
  });

  it('never counts from before the oldest entry arrived', async () => {
    const queue = queueOf({ batch: [entry('w', 'batch', 10 * MINUTE)] }, [
      slot('a', 120 * MINUTE, 121 * MINUTE),
      slot('b', 120 * MINUTE, 121 * MINUTE),
    ]);
    expect(await oldestWaitingPastEstimate(queue, settings, NOW)).toBe(10 * 60);
  });

  it('is 0 while an account has a free slot (its start is now)', async () => {
    const queue = queueOf({ batch: [entry('w', 'batch', 120 * MINUTE)] }, [
      slot('a', 120 * MINUTE, 121 * MINUTE),
    ]);
    expect(await oldestWaitingPastEstimate(queue, settings, NOW)).toBe(0);
  });
});

describe('the dispatcher’s measurement', () => {
  const queue = queueOf({ batch: [entry('w', 'batch', 120 * MINUTE)] }, [
    slot('a', 120 * MINUTE, 121 * MINUTE),
    slot('b', 120 * MINUTE, 121 * MINUTE),
  ]);

  function recording(): Metrics & { added: Array<{ name: string; value: number }> } {
    const added: Array<{ name: string; value: number }> = [];
    return { added, add: (name, _unit, value) => void added.push({ name, value }) };
  }

  it('is emitted on the one-minute sweep, after the run, and not on a kick', async () => {
    const metrics = recording();
    const runs: unknown[] = [];
    const handler = watchingTheQueue(queue, settings, metrics, silentLogger, async (event: unknown) => {
      runs.push(event);
      return 'ran';
    });

    expect(await handler({})).toBe('ran');
    expect(metrics.added).toEqual([]);
    expect(await handler({ 'detail-type': 'Scheduled Event', source: 'aws.events' })).toBe('ran');

    expect(runs).toHaveLength(2);
    expect(metrics.added).toEqual([{ name: 'OldestWaitingSeconds', value: expect.any(Number) }]);
    expect(metrics.added[0]?.value).toBeGreaterThan(60 * 60);
  });

  it('never fails the run when the queue cannot be read', async () => {
    const broken = {
      ...queue,
      waiting: async () => Promise.reject(new Error('throttled')),
    } as AdmissionQueue;
    const warnings: string[] = [];
    const handler = watchingTheQueue(
      broken,
      settings,
      recording(),
      { ...silentLogger, warn: (message) => void warnings.push(message) },
      async () => 'ran',
    );

    await expect(handler({ 'detail-type': 'Scheduled Event' })).resolves.toBe('ran');
    expect(warnings).toEqual(['Admission queue not measured']);
  });
});
