import {
  type AdmissionQueue,
  type AdmissionRecord,
  compareInLane,
  type DispatcherLease,
  type DispatcherState,
  EMPTY_LANE,
  entriesAhead,
  INITIAL_DISPATCHER_STATE,
  type Lane,
  type LaneCounters,
  type QueueOrder,
  type QueueStanding,
  roundOf,
  runMsOf,
  type SlotProgress,
  type WaitingEntry,
} from '../functions/shared/admission.js';
import { batchOfId } from '../functions/shared/batch.js';

interface Item extends WaitingEntry {
  /** Present while waiting. */
  waiting: boolean;
  /** Its place in its lane's fair order, taken when it was created. */
  order: QueueOrder;
  account?: string;
  grantedAt?: number;
  progress: SlotProgress;
}

/**
 * An in-memory {@link AdmissionQueue}: the local runner's when it has no DynamoDB, and the unit
 * tests'. Held to the DynamoDB adapter by test/contract/admission-queue.test.ts.
 */
export class MemoryAdmissionQueue implements AdmissionQueue {
  readonly #items = new Map<string, Item>();
  #state: DispatcherState = INITIAL_DISPATCHER_STATE;
  /** The lanes' counters, kept as the DynamoDB adapter keeps them (docs/admission.md). */
  readonly #lanes: Record<Lane, LaneCounters> = { interactive: EMPTY_LANE, batch: EMPTY_LANE };
  readonly #tasks = new Map<string, Map<string, number>>();

  async enqueue(entry: WaitingEntry): Promise<void> {
    const existing = this.#items.get(entry.id);
    // As the DynamoDB adapter: the same Admit again, or a stale one (a submit was attempted), changes nothing.
    const submitted =
      existing?.progress.submitAttemptAt !== undefined || existing?.progress.submittedAt !== undefined;
    if (existing && (existing.token === entry.token || submitted)) return;
    // A slot given back unused is in its lane again: counted as not having left.
    if (existing && !existing.waiting) this.#leave(existing, -1);
    this.#items.set(entry.id, {
      ...entry,
      enqueuedAt: existing?.enqueuedAt ?? entry.enqueuedAt,
      // One enqueued again keeps its place (its first round).
      order: existing?.order ?? this.#take(entry),
      waiting: true,
      progress: {},
    });
  }

  async waiting(lane: Lane, limit: number): Promise<readonly WaitingEntry[]> {
    return this.#waitingIn(lane)
      .slice(0, limit)
      .map(({ id, lane: itemLane, enqueuedAt, expectedRunSeconds, token, order }) => ({
        id,
        lane: itemLane,
        enqueuedAt,
        expectedRunSeconds,
        token,
        order,
      }));
  }

  async count(lane: Lane): Promise<number> {
    return this.#waitingIn(lane).length;
  }

  async get(id: string): Promise<AdmissionRecord | undefined> {
    const item = this.#items.get(id);
    if (!item) return undefined;
    const entry = {
      id: item.id,
      lane: item.lane,
      enqueuedAt: item.enqueuedAt,
      expectedRunSeconds: item.expectedRunSeconds,
      token: item.token,
      order: item.order,
    };
    if (item.waiting || item.account === undefined || item.grantedAt === undefined)
      return { kind: 'waiting', ...entry };
    return {
      kind: 'granted',
      ...entry,
      account: item.account,
      grantedAt: item.grantedAt,
      ...item.progress,
    };
  }

  async slots(account: string) {
    return [...this.#items.values()]
      .filter((item) => !item.waiting && item.account === account)
      .sort((a, b) => (a.id < b.id ? -1 : 1))
      .map((item) => ({
        id: item.id,
        account,
        lane: item.lane,
        grantedAt: item.grantedAt ?? item.enqueuedAt,
        expectedRunSeconds: item.expectedRunSeconds,
        ...item.progress,
      }));
  }

  async standing(ids: readonly string[]): Promise<QueueStanding> {
    const records = new Map<string, AdmissionRecord>();
    for (const id of ids) {
      const record = await this.get(id);
      if (record?.kind !== 'waiting' || !record.order) {
        if (record) records.set(id, record);
        continue;
      }
      // Its place, numbered as its lane's counters number them (`aheadIn`), as the DynamoDB adapter's.
      const lane = this.#lanes[record.lane];
      const ahead = entriesAhead(record.order, lane, this.#state.rounds?.[record.lane]);
      records.set(id, { ...record, seq: lane.head + ahead });
    }
    return { records, lanes: { ...this.#lanes }, state: this.#state };
  }

  async grant(id: string, account: string, grantedAt: number, token?: string): Promise<boolean> {
    const item = this.#items.get(id);
    if (!item?.waiting || (token !== undefined && item.token !== token)) return false;
    item.waiting = false;
    item.account = account;
    item.grantedAt = grantedAt;
    this.#leave(item);
    return true;
  }

  async note(id: string, progress: SlotProgress): Promise<void> {
    const item = this.#items.get(id);
    if (!item || item.waiting) return;
    const defined = Object.entries(progress).filter(([, value]) => value !== undefined);
    // Each field once, as the DynamoDB adapter's if_not_exists.
    item.progress = { ...Object.fromEntries(defined), ...item.progress };
  }

  async release(id: string, token?: string): Promise<boolean> {
    const item = this.#items.get(id);
    if (token !== undefined && item?.token !== token) return false;
    // A waiting entry left its lane (cancelled, timed out).
    if (item?.waiting) this.#leave(item);
    return this.#items.delete(id);
  }

  async recordTask(account: string, taskId: string, at: number): Promise<void> {
    const tasks = this.#tasks.get(account) ?? new Map<string, number>();
    tasks.set(taskId, at);
    this.#tasks.set(account, tasks);
  }

  async recentTasks(account: string, since: number): Promise<ReadonlySet<string>> {
    const tasks = this.#tasks.get(account) ?? new Map<string, number>();
    return new Set([...tasks].filter(([, at]) => at >= since).map(([taskId]) => taskId));
  }

  async pruneTasks(account: string, before: number): Promise<void> {
    const tasks = this.#tasks.get(account);
    for (const [taskId, at] of tasks ?? []) if (at < before) tasks?.delete(taskId);
  }

  async readState(): Promise<DispatcherState> {
    return this.#state;
  }

  async writeState(state: DispatcherState): Promise<void> {
    this.#state = state;
  }

  #waitingIn(lane: Lane): Item[] {
    return [...this.#items.values()].filter((item) => item.waiting && item.lane === lane).sort(compareInLane);
  }

  /** A new entry's numbers in its lane and its round from the lane's clock, as the DynamoDB adapter takes them. */
  #take(entry: WaitingEntry): QueueOrder {
    const line = batchOfId(entry.id)?.line;
    const lane = this.#lanes[entry.lane];
    const solo = line === undefined ? lane.soloTail + 1 : undefined;
    this.#lanes[entry.lane] = {
      ...lane,
      tail: lane.tail + 1,
      soloTail: solo ?? lane.soloTail,
      runMs: (lane.runMs ?? 0) + runMsOf(entry.expectedRunSeconds),
    };
    return {
      round: roundOf(this.#state.rounds?.[entry.lane]?.clock ?? 0, line),
      arrival: lane.tail + 1,
      ...(solo === undefined ? {} : { solo }),
    };
  }

  /** Counts `item` as having left its lane (or, with −1, back in it). */
  #leave(item: Item, count: 1 | -1 = 1): void {
    const lane = this.#lanes[item.lane];
    const solo = item.order.solo === undefined ? 0 : count;
    this.#lanes[item.lane] = {
      ...lane,
      head: lane.head + count,
      soloHead: lane.soloHead + solo,
      runMs: (lane.runMs ?? 0) - count * runMsOf(item.expectedRunSeconds),
    };
  }
}

/**
 * An in-memory {@link DispatcherLease}, held to the DynamoDB adapter's by
 * test/contract/admission-queue.test.ts.
 */
export class MemoryDispatcherLease implements DispatcherLease {
  #lease: { owner: string; expiresAt: number; again: boolean } | undefined;

  async take(owner: string, now: number, until: number): Promise<boolean> {
    if (this.#lease && this.#lease.expiresAt >= now) return false;
    this.#lease = { owner, expiresAt: until, again: false };
    return true;
  }

  async renew(owner: string, until: number): Promise<boolean> {
    if (this.#lease?.owner !== owner) return false;
    this.#lease.expiresAt = until;
    return true;
  }

  async request(now: number): Promise<boolean> {
    if (!this.#lease || this.#lease.expiresAt < now) return false;
    this.#lease.again = true;
    return true;
  }

  async finish(owner: string, until: number): Promise<'released' | 'again' | 'lost'> {
    if (this.#lease?.owner !== owner) return 'lost';
    if (!this.#lease.again) {
      this.#lease = undefined;
      return 'released';
    }
    this.#lease.again = false;
    this.#lease.expiresAt = until;
    return 'again';
  }

  async handOff(owner: string): Promise<void> {
    if (this.#lease?.owner === owner) this.#lease.expiresAt = 0;
  }
}
