/** A source of the current time, injected so that tests and the local emulator can move it. */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
}

/** Sleeps `ms` milliseconds, injected beside a {@link Clock} so that waits can run in virtual time. */
export type Sleep = (ms: number) => Promise<void>;

/** Sleeps in real time. */
export const realSleep: Sleep = (ms) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

/** The machine's clock. */
export const systemClock: Clock = { now: () => Date.now() };

/**
 * The machine's clock plus an offset that only grows: `advance()` jumps ahead without sleeping,
 * so the local runner can skip a Wait state and the emulator sees the same skipped time.
 */
export class AdjustableClock implements Clock {
  #offsetMs = 0;

  now(): number {
    return Date.now() + this.#offsetMs;
  }

  /** Moves the clock forward by `ms` milliseconds (negative values are ignored). */
  advance(ms: number): void {
    if (ms > 0) this.#offsetMs += ms;
  }
}
