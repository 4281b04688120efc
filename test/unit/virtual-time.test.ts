import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { AdjustableClock } from '../../functions/shared/clock.js';
import { VirtualTime } from '../../local/virtual-time.js';

/** Resolves to whether `promise` settled within `ms` of real time. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  return Promise.race([promise.then(() => true), sleep(ms).then(() => false)]);
}

describe('VirtualTime', () => {
  it('jumps the clock at once when the only participant sleeps', async () => {
    // Prepare
    const clock = new AdjustableClock();
    const time = new VirtualTime(clock);
    const before = clock.now();

    // Act
    const woke = await settlesWithin(time.join().sleep(60_000), 500);

    // Assess
    expect(woke).toBe(true);
    expect(clock.now() - before).toBeGreaterThanOrEqual(60_000);
  });

  it('does not jump while another participant is busy, then jumps to the earliest wake-up', async () => {
    // Prepare
    const clock = new AdjustableClock();
    const time = new VirtualTime(clock);
    const long = time.join();
    const busy = time.join();
    const before = clock.now();

    // Act
    const longSleep = long.sleep(60_000);
    const wokeWhileBusy = await settlesWithin(longSleep, 50);
    const shortWoke = await settlesWithin(busy.sleep(10_000), 500);
    const jumped = clock.now() - before;
    const longWokeEarly = await settlesWithin(longSleep, 50);
    busy.leave();

    // Assess
    expect(wokeWhileBusy).toBe(false);
    expect(shortWoke).toBe(true);
    expect(jumped).toBeGreaterThanOrEqual(10_000);
    expect(jumped).toBeLessThan(60_000);
    expect(longWokeEarly).toBe(false);
    expect(await settlesWithin(longSleep, 500)).toBe(true);
    expect(clock.now() - before).toBeGreaterThanOrEqual(60_000);
  });

  it('ends a short sleep in real time even while another participant stays busy', async () => {
    // Prepare
    const clock = new AdjustableClock();
    const time = new VirtualTime(clock);
    time.join();
    const sleeper = time.join();

    // Act
    const woke = await settlesWithin(sleeper.sleep(30), 500);

    // Assess
    expect(woke).toBe(true);
  });

  it('drops the sleep of a participant that leaves, and lets the others jump', async () => {
    // Prepare
    const clock = new AdjustableClock();
    const time = new VirtualTime(clock);
    const leaving = time.join();
    const staying = time.join();

    // Act
    const abandoned = leaving.sleep(1000);
    leaving.leave();
    const woke = await settlesWithin(staying.sleep(120_000), 500);

    // Assess
    expect(woke).toBe(true);
    expect(await settlesWithin(abandoned, 50)).toBe(false);
  });
});
