import type { CancelTimer, Clock, Timers } from '../../functions/shared/clock.js';

interface PendingTimer {
  readonly due: number;
  /** Order of setting, so that two timers due at once run in the order they were set. */
  readonly order: number;
  readonly callback: () => void;
}

/**
 * A clock whose time moves only when the test says so: `advance(ms)` moves it, running every
 * timer that falls due on the way, each at its own time and in order (a timer set by a callback
 * runs too, if it falls due before the end). No real time passes, so a 60 s deadline or a 500 ms
 * stall window is as quick, and as certain, on a busy machine as on an idle one.
 */
export class ManualClock implements Clock, Timers {
  #now: number;
  #order = 0;
  readonly #timers = new Set<PendingTimer>();

  constructor(start = Date.UTC(2026, 0, 1)) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(callback: () => void, ms: number): CancelTimer {
    const timer = { due: this.#now + Math.max(0, ms), order: this.#order++, callback };
    this.#timers.add(timer);
    return () => void this.#timers.delete(timer);
  }

  /** How many timers are set and not yet run. */
  get pending(): number {
    return this.#timers.size;
  }

  /** Moves the clock `ms` forward, running the timers due meanwhile (negative values are ignored). */
  advance(ms: number): void {
    const end = this.#now + Math.max(0, ms);
    for (;;) {
      const next = [...this.#timers]
        .filter((timer) => timer.due <= end)
        .sort((a, b) => a.due - b.due || a.order - b.order)[0];
      if (!next) break;
      this.#timers.delete(next);
      this.#now = Math.max(this.#now, next.due);
      next.callback();
    }
    this.#now = end;
  }
}
