/**
 * Sliding-window limiter: at most `limit` recorded events in any window of `windowMs`. A sliding
 * window (rather than fixed buckets aligned to whole seconds) matches "N per second" for every
 * window, so a burst straddling a second boundary is throttled too.
 */
export class SlidingWindowLimiter {
  readonly #limit: number;
  readonly #windowMs: number;
  #stamps: number[] = [];

  constructor(limit: number, windowMs = 1000) {
    this.#limit = limit;
    this.#windowMs = windowMs;
  }

  /** True when an event at `now` would exceed the limit. */
  isFull(now: number): boolean {
    this.#stamps = this.#stamps.filter((stamp) => stamp > now - this.#windowMs);
    return this.#stamps.length >= this.#limit;
  }

  /** Counts an event at `now`. */
  record(now: number): void {
    this.#stamps.push(now);
  }

  /** Records an event at `now` unless the window is full; returns whether it was recorded. */
  tryAcquire(now: number): boolean {
    if (this.isFull(now)) return false;
    this.record(now);
    return true;
  }

  /** Forgets every event. */
  reset(): void {
    this.#stamps = [];
  }
}
