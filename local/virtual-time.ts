import type { AdjustableClock, CancelTimer, Clock, Timers } from '../functions/shared/clock.js';

/**
 * The clock virtual time runs on: its timers end the sleeps that real time ends, and `advance`
 * makes the jumps ({@link AdjustableClock}; a test's manual clock, which moves only when told).
 */
export type VirtualClock = Clock & Timers & { advance(ms: number): void };

/** One running execution, as far as virtual time is concerned. */
export interface VirtualTimeParticipant {
  /**
   * Resolves once the clock reads `ms` later than now: when that much real time has passed, or
   * sooner, when every participant is sleeping and this sleep ends first (the clock jumps to it).
   */
  sleep(ms: number): Promise<void>;
  /**
   * Waits for `promise` without counting as busy (an execution paused in the admission queue):
   * the clock may jump meanwhile; busy again once it settles.
   */
  idle<T>(promise: Promise<T>): Promise<T>;
  /** Leaves for good (the execution ended or was aborted); a pending sleep never resolves. */
  leave(): void;
}

interface Sleeper {
  readonly until: number;
  readonly cancel: CancelTimer;
  readonly wake: () => void;
}

const shared = new WeakMap<VirtualClock, VirtualTime>();

/** The virtual time of `clock`, shared by every runner that uses the same clock. */
export function virtualTimeOf(clock: VirtualClock): VirtualTime {
  let time = shared.get(clock);
  if (!time) {
    time = new VirtualTime(clock);
    shared.set(clock, time);
  }
  return time;
}

/**
 * A discrete-event scheduler over an {@link AdjustableClock}: Wait states and retry intervals of
 * the local workflow sleep here instead of in real time. While any participant is busy (a Lambda
 * calling the emulator or S3), time passes at the real rate; once every participant sleeps, the
 * clock jumps to the earliest wake-up. Many concurrent executions thus see one consistent
 * timeline, as the emulator's rate limits and queue need, and a 30-minute queue passes in
 * milliseconds.
 */
export class VirtualTime {
  readonly #clock: VirtualClock;
  readonly #participants = new Set<object>();
  readonly #sleepers = new Map<object, Sleeper>();
  #checkQueued = false;

  constructor(clock: VirtualClock) {
    this.#clock = clock;
  }

  /** Registers a participant (an execution that just started); it counts as busy until it sleeps. */
  join(): VirtualTimeParticipant {
    const token = {};
    this.#participants.add(token);
    let left = false;
    return {
      sleep: (ms) => this.#sleep(token, ms),
      idle: async (promise) => {
        this.#participants.delete(token);
        this.#queueCheck();
        try {
          return await promise;
        } finally {
          if (!left) this.#participants.add(token);
        }
      },
      leave: () => {
        left = true;
        this.#participants.delete(token);
        const sleeper = this.#sleepers.get(token);
        sleeper?.cancel();
        this.#sleepers.delete(token);
        this.#queueCheck();
      },
    };
  }

  #sleep(token: object, ms: number): Promise<void> {
    const wait = Math.max(0, ms);
    return new Promise((resolve) => {
      let cancel: CancelTimer = () => {};
      const wake = () => {
        cancel();
        this.#sleepers.delete(token);
        resolve();
      };
      // The clock's timers never keep the process alive: a jump or the end of the run settles it.
      cancel = this.#clock.setTimeout(wake, wait);
      this.#sleepers.set(token, { until: this.#clock.now() + wait, cancel, wake });
      this.#queueCheck();
    });
  }

  /** Checks after the current I/O callbacks, so work that is about to start counts as busy. */
  #queueCheck(): void {
    if (this.#checkQueued) return;
    this.#checkQueued = true;
    setImmediate(() => {
      this.#checkQueued = false;
      this.#jumpIfAllSleep();
    });
  }

  #jumpIfAllSleep(): void {
    if (this.#sleepers.size === 0 || this.#sleepers.size < this.#participants.size) return;
    let next = Number.POSITIVE_INFINITY;
    for (const sleeper of this.#sleepers.values()) next = Math.min(next, sleeper.until);
    this.#clock.advance(next - this.#clock.now());
    const now = this.#clock.now();
    for (const sleeper of [...this.#sleepers.values()]) if (sleeper.until <= now) sleeper.wake();
  }
}
