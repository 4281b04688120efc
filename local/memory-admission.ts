import {
  type AdmissionQueue,
  type AdmissionRecord,
  type DispatcherState,
  INITIAL_DISPATCHER_STATE,
  type Lane,
  type WaitingEntry,
} from '../functions/shared/admission.js';

interface Item extends WaitingEntry {
  /** Present while waiting. */
  waiting: boolean;
  account?: string;
  grantedAt?: number;
  submittedAt?: number;
  startedAt?: number;
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

  async enqueue(entry: WaitingEntry): Promise<void> {
    const existing = this.#items.get(entry.id);
    this.#items.set(entry.id, {
      ...entry,
      enqueuedAt: existing?.enqueuedAt ?? entry.enqueuedAt,
      waiting: true,
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
      ...(item.submittedAt === undefined ? {} : { submittedAt: item.submittedAt }),
      ...(item.startedAt === undefined ? {} : { startedAt: item.startedAt }),
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
        ...(item.submittedAt === undefined ? {} : { submittedAt: item.submittedAt }),
        ...(item.startedAt === undefined ? {} : { startedAt: item.startedAt }),
      }));
  }

  async grant(id: string, account: string, grantedAt: number): Promise<boolean> {
    const item = this.#items.get(id);
    if (!item?.waiting) return false;
    item.waiting = false;
    item.account = account;
    item.grantedAt = grantedAt;
    return true;
  }

  async note(id: string, progress: { submittedAt?: number; startedAt?: number }): Promise<void> {
    const item = this.#items.get(id);
    if (!item || item.waiting) return;
    item.submittedAt ??= progress.submittedAt;
    item.startedAt ??= progress.startedAt;
  }

  async release(id: string): Promise<void> {
    this.#items.delete(id);
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
