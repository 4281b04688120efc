import {
  type AdmissionQueue,
  type AdmissionRecord,
  type DispatcherLease,
  type DispatcherState,
  INITIAL_DISPATCHER_STATE,
  type Lane,
  type SlotProgress,
  type WaitingEntry,
} from '../functions/shared/admission.js';

interface Item extends WaitingEntry {
  /** Present while waiting. */
  waiting: boolean;
  account?: string;
  grantedAt?: number;
  progress: SlotProgress;
}

/** Queue order: enqueue time, then id (as the DynamoDB adapter's sort key orders them). */
const order = (a: Pick<WaitingEntry, 'enqueuedAt' | 'id'>, b: Pick<WaitingEntry, 'enqueuedAt' | 'id'>) =>
  a.enqueuedAt - b.enqueuedAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/**
 * An in-memory {@link AdmissionQueue}: the local runner's when it has no DynamoDB, and the unit
 * tests'. Held to the DynamoDB adapter by test/contract/admission-queue.test.ts.
 */
export class MemoryAdmissionQueue implements AdmissionQueue {
  readonly #items = new Map<string, Item>();
  #state: DispatcherState = INITIAL_DISPATCHER_STATE;
  readonly #tasks = new Map<string, Map<string, number>>();

  async enqueue(entry: WaitingEntry): Promise<void> {
    const existing = this.#items.get(entry.id);
    // As the DynamoDB adapter: the same Admit again, or a stale one (a submit was attempted), changes nothing.
    const submitted =
      existing?.progress.submitAttemptAt !== undefined || existing?.progress.submittedAt !== undefined;
    if (existing && (existing.token === entry.token || submitted)) return;
    this.#items.set(entry.id, {
      ...entry,
      enqueuedAt: existing?.enqueuedAt ?? entry.enqueuedAt,
      waiting: true,
      progress: {},
    });
  }

  async waiting(lane: Lane, limit: number): Promise<readonly WaitingEntry[]> {
    return this.#waitingIn(lane)
      .slice(0, limit)
      .map(({ id, lane: itemLane, enqueuedAt, expectedRunSeconds, token }) => ({
        id,
        lane: itemLane,
        enqueuedAt,
        expectedRunSeconds,
        token,
      }));
  }

  async count(lane: Lane, before?: Pick<WaitingEntry, 'enqueuedAt' | 'id'>): Promise<number> {
    return this.#waitingIn(lane).filter((item) => before === undefined || order(item, before) < 0).length;
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

  async grant(id: string, account: string, grantedAt: number, token?: string): Promise<boolean> {
    const item = this.#items.get(id);
    if (!item?.waiting || (token !== undefined && item.token !== token)) return false;
    item.waiting = false;
    item.account = account;
    item.grantedAt = grantedAt;
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
    if (token !== undefined && this.#items.get(id)?.token !== token) return false;
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
    return [...this.#items.values()].filter((item) => item.waiting && item.lane === lane).sort(order);
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
