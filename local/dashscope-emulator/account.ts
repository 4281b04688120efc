import { expiresAt, type TaskRecord } from './task-record.js';

/**
 * Told of every change of an account's task set, in order, before the change is made (so a change
 * that cannot be recorded is not made). Starts, ends and expiries are not changes: they follow
 * from the times, and `settle` replays them.
 */
export interface AccountJournal {
  added(record: TaskRecord): void;
  canceled(taskId: string, at: number): void;
  forgot(taskId: string, at: number): void;
  cleared(): void;
}

/**
 * The tasks of one account and its single runner (the documented SD limit: one task running at a
 * time, the rest PENDING first in, first out).
 *
 * Nothing runs in the background: `settle(now)` replays, in time order, every start and end that
 * has happened by `now`. Callers settle before every read, so the answer is right however far the
 * clock jumped since the last request, several tasks finishing within one jump included.
 */
export class Account {
  readonly #ttlMs: number;
  readonly #records = new Map<string, TaskRecord>();
  #queue: TaskRecord[] = [];
  #running: TaskRecord | undefined;
  /** When the runner last became free; a task starts at the later of this and its submit. */
  #freeSince = Number.NEGATIVE_INFINITY;
  #journal: AccountJournal | undefined;

  constructor(ttlMs: number) {
    this.#ttlMs = ttlMs;
  }

  /** From now on, tells `journal` of every add, cancel, forget and clear. */
  journalTo(journal: AccountJournal): void {
    this.#journal = journal;
  }

  /** Queues a freshly submitted task behind every task already waiting. */
  add(record: TaskRecord): void {
    this.#journal?.added(record);
    this.restore(record);
  }

  /**
   * Puts back a record as a journal kept it, without telling the journal: a canceled one stays
   * out of the queue, a started one takes the runner at its recorded time (`settle` frees it at
   * its end), any other is queued as `add` does. Restore in submit order.
   */
  restore(record: TaskRecord): void {
    this.#records.set(record.taskId, record);
    if (record.canceledAt !== undefined) return;
    if (record.scheduledAt === undefined) this.#queue.push(record);
    else this.#running = record;
  }

  /** The task, unless it never existed or has expired (call `settle` first). */
  get(taskId: string): TaskRecord | undefined {
    return this.#records.get(taskId);
  }

  /** Every known task, oldest first (call `settle` first). */
  all(): TaskRecord[] {
    return [...this.#records.values()];
  }

  /** Cancels a PENDING task at `now`; false when the task is not (or no longer) PENDING. */
  cancel(taskId: string, now: number): boolean {
    const record = this.#records.get(taskId);
    if (!record || record.scheduledAt !== undefined || record.canceledAt !== undefined) return false;
    this.#journal?.canceled(taskId, now);
    record.canceledAt = now;
    this.#queue = this.#queue.filter((queued) => queued !== record);
    return true;
  }

  /**
   * Drops a task's record at `now`, as its retention would, whatever its state; a RUNNING task
   * frees the runner. False when the task is not known.
   */
  forget(taskId: string, now: number): boolean {
    const record = this.#records.get(taskId);
    if (!record) return false;
    this.#journal?.forgot(taskId, now);
    this.#records.delete(taskId);
    this.#queue = this.#queue.filter((queued) => queued !== record);
    if (this.#running === record) {
      this.#running = undefined;
      this.#freeSince = now;
    }
    return true;
  }

  /** Brings starts, ends and expiries up to `now`. */
  settle(now: number): void {
    // Each step finishes or starts one task; stop once nothing more has happened by now.
    let progressed = true;
    while (progressed) progressed = this.#step(now);
    this.#purge(now);
  }

  /** Forgets everything (the journal, if any, is emptied too). */
  clear(): void {
    this.#journal?.cleared();
    this.#records.clear();
    this.#queue = [];
    this.#running = undefined;
    this.#freeSince = Number.NEGATIVE_INFINITY;
  }

  #step(now: number): boolean {
    const running = this.#running;
    if (running?.scheduledAt !== undefined) {
      const end = running.scheduledAt + running.durationMs;
      if (end > now) return false;
      this.#freeSince = end;
      this.#running = undefined;
    }
    const next = this.#queue[0];
    if (!next) return false;
    const start = Math.max(this.#freeSince, next.submittedAt);
    if (start > now) return false;
    this.#queue.shift();
    if (start >= next.submittedAt + this.#ttlMs) {
      // It waited out its whole lifetime in the queue: it vanishes without running.
      this.#records.delete(next.taskId);
      return true;
    }
    next.scheduledAt = start;
    this.#running = next;
    return true;
  }

  #purge(now: number): void {
    for (const record of this.#records.values()) {
      if (expiresAt(record, now, this.#ttlMs) <= now) this.#records.delete(record.taskId);
    }
    this.#queue = this.#queue.filter((queued) => this.#records.has(queued.taskId));
  }
}
