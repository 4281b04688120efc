import { describe, expect, it } from 'vitest';
import { AdjustableClock } from '../../functions/shared/clock.js';
import { VirtualTime } from '../../local/virtual-time.js';
import { ManualClock } from '../support/manual-clock.js';

/**
 * VirtualTime on a {@link ManualClock}: no real time passes, the test moves the clock where real
 * time would have moved it, so every case is exact whatever the machine is doing.
 */

/** A promise, and whether it has settled yet. */
function watched(promise: Promise<unknown>): { readonly settled: boolean } {
  const state = { settled: false };
  void promise.then(() => {
    state.settled = true;
  });
  return state;
}

/** Lets VirtualTime's check (queued after the current I/O callbacks) and what it wakes run. */
async function turn(): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve));
}

describe('VirtualTime', () => {
  it('jumps the clock at once when the only participant sleeps', async () => {
    // Prepare
    const clock = new ManualClock();
    const time = new VirtualTime(clock);
    const before = clock.now();

    // Act
    const sleep = watched(time.join().sleep(60_000));
    await turn();

    // Assess
    expect(sleep.settled).toBe(true);
    expect(clock.now() - before).toBe(60_000);
  });

  it('does not jump while another participant is busy, then jumps to the earliest wake-up', async () => {
    // Prepare
    const clock = new ManualClock();
    const time = new VirtualTime(clock);
    const long = time.join();
    const busy = time.join();
    const before = clock.now();

    // Act
    const longSleep = watched(long.sleep(60_000));
    await turn();
    const whileBusy = { woke: longSleep.settled, moved: clock.now() - before };
    const shortSleep = watched(busy.sleep(10_000));
    await turn();
    const afterShort = { woke: shortSleep.settled, longWoke: longSleep.settled, moved: clock.now() - before };
    busy.leave();
    await turn();

    // Assess
    expect(whileBusy).toEqual({ woke: false, moved: 0 });
    expect(afterShort).toEqual({ woke: true, longWoke: false, moved: 10_000 });
    expect(longSleep.settled).toBe(true);
    expect(clock.now() - before).toBe(60_000);
  });

  it('ends a sleep once its time has passed, even while another participant stays busy', async () => {
    // Prepare
    const clock = new ManualClock();
    const time = new VirtualTime(clock);
    time.join();
    const sleeper = time.join();
    const sleep = watched(sleeper.sleep(30));
    await turn();
    const beforeItsTime = sleep.settled;

    // Act: 30 ms pass, as real time passes while the other participant works.
    clock.advance(30);
    await turn();

    // Assess
    expect(beforeItsTime).toBe(false);
    expect(sleep.settled).toBe(true);
  });

  it('drops the sleep of a participant that leaves, and lets the others jump', async () => {
    // Prepare
    const clock = new ManualClock();
    const time = new VirtualTime(clock);
    const leaving = time.join();
    const staying = time.join();

    // Act
    const abandoned = watched(leaving.sleep(1000));
    leaving.leave();
    const kept = watched(staying.sleep(120_000));
    await turn();
    clock.advance(60_000);
    await turn();

    // Assess
    expect(kept.settled).toBe(true);
    expect(abandoned.settled).toBe(false);
    expect(clock.pending).toBe(0);
  });

  it('jumps the machine’s adjustable clock too, with no real wait', async () => {
    // Prepare: the clock the local runner uses.
    const clock = new AdjustableClock();
    const time = new VirtualTime(clock);
    const before = clock.now();

    // Act: settles at the jump; a real 60 s wait would outlast the test's timeout.
    await time.join().sleep(60_000);

    // Assess
    expect(clock.now() - before).toBeGreaterThanOrEqual(60_000);
  });
});
