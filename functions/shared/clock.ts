/** A source of the current time, injected so that tests and the local emulator can move it. */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
}

/** Sleeps `ms` milliseconds, injected beside a {@link Clock} so that waits can run in virtual time. */
export type Sleep = (ms: number) => Promise<void>;

/** Sleeps in real time. */
export const realSleep: Sleep = (ms) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

/** Cancels a timer set with {@link Timers.setTimeout}; harmless once it ran or was cancelled. */
export type CancelTimer = () => void;

/**
 * Runs a callback once a delay has passed on the time of a {@link Clock}, injected beside it so
 * that a timeout or a watchdog can run on a clock a test moves (test/support/manual-clock.ts).
 */
export interface Timers {
  /** Calls `callback` once, `ms` milliseconds from now; never keeps the process alive. */
  setTimeout(callback: () => void, ms: number): CancelTimer;
}

/** Real timers, unreferenced (a pending one never keeps the process alive). */
export const realTimers: Timers = {
  setTimeout(callback, ms) {
    const timer = setTimeout(callback, Math.max(0, ms));
    timer.unref();
    return () => clearTimeout(timer);
  },
};

/** The machine's clock, with its real timers. */
export const systemClock: Clock & Timers = { now: () => Date.now(), setTimeout: realTimers.setTimeout };

/**
 * The machine's clock plus an offset that only grows: `advance()` jumps ahead without sleeping,
 * so the local runner can skip a Wait state and the emulator sees the same skipped time.
 */
export class AdjustableClock implements Clock, Timers {
  #offsetMs = 0;

  now(): number {
    return Date.now() + this.#offsetMs;
  }

  /** A real timer: time passes at the real rate between jumps, and a jump does not run it early. */
  setTimeout(callback: () => void, ms: number): CancelTimer {
    return realTimers.setTimeout(callback, ms);
  }

  /** Moves the clock forward by `ms` milliseconds (negative values are ignored). */
  advance(ms: number): void {
    if (ms > 0) this.#offsetMs += ms;
  }
}
