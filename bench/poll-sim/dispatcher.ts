import {
  type AccountLimits,
  ADMISSION_DEFAULTS,
  DEFAULT_LANE_RULES,
  type DispatcherState,
  INITIAL_DISPATCHER_STATE,
  type Lane,
  type LaneRules,
  planGrants,
  type QueueEntry,
  type Slot,
} from '../../functions/shared/admission.js';
import { DOCUMENTED_LIMITS } from './dashscope.js';

/**
 * The admission settings the simulation runs with. Main has no configuration default for them
 * yet, so they are set here, in one place: a depth of 2 per account (one task running, one
 * waiting behind it), DashScope's documented 2 submits/s per account, batch's share from
 * `DEFAULT_LANE_RULES` (one grant in 4), and a sweep every minute.
 */
export const ADMISSION_SETTINGS = {
  depth: ADMISSION_DEFAULTS.depth,
  submitsPerSecond: DOCUMENTED_LIMITS.submitsPerSecond,
  rules: DEFAULT_LANE_RULES as LaneRules,
  sweepSeconds: 60,
} as const;

/**
 * What the dispatcher and the store calls around it take, assumed (not measured): a DynamoDB
 * call (read, query or conditional write) 10 ms, an AWS call that returns at once (SendTaskSuccess,
 * an asynchronous Lambda Invoke) 25 ms, and the dispatcher at 128 MB.
 */
export const DISPATCHER_ASSUMPTIONS = {
  memoryMb: 128,
  storeCallMs: 10,
  awsCallMs: 25,
  /** Planning and logging per run, at 128 MB. */
  cpuMs: 20,
} as const;

/** The accounts of a trial, as the dispatcher sees them, named `account-1`, `account-2`, … */
export function accountLimits(count: number): AccountLimits[] {
  return Array.from({ length: count }, (_, i) => ({
    name: `account-${i + 1}`,
    depth: ADMISSION_SETTINGS.depth,
    submitsPerSecond: ADMISSION_SETTINGS.submitsPerSecond,
  }));
}

/** How the dispatcher reaches the rest of the simulation. */
export interface DispatcherHooks {
  /** Runs `run` at `atMs` of the simulation's virtual time. */
  schedule(atMs: number, run: () => void): void;
  /** The dispatcher's SendTaskSuccess for `id` reached Step Functions at `atMs`: its Admit state ends. */
  granted(id: string, account: string, atMs: number): void;
  /** The Lambda invoke latency, ms: from a kick to the dispatcher's handler. */
  readonly invokeMs: number;
}

/**
 * The dispatcher Lambda in virtual time, applying the real `planGrants`. Reserved concurrency 1:
 * runs never overlap; a kick that arrives during a run is one more invocation, run after it (an
 * asynchronous invocation waits in Lambda's queue). Each run reads the dispatcher's state, the
 * head of each lane and each account's slots, plans, then for each grant waits for its `atMs`,
 * writes the grant and calls SendTaskSuccess, and finally writes its state.
 */
export class SimDispatcher {
  /** Invocations: kicks and sweeps. */
  invocations = 0;
  /** Billed ms of every invocation, its waits for `atMs` included. */
  billedMs = 0;
  /** DynamoDB calls made by the dispatcher's runs. */
  storeReads = 0;
  storeWrites = 0;
  readonly #accounts: readonly AccountLimits[];
  readonly #hooks: DispatcherHooks;
  readonly #waiting: Record<Lane, QueueEntry[]> = { interactive: [], batch: [] };
  readonly #slots = new Map<string, Slot>();
  #state: DispatcherState = INITIAL_DISPATCHER_STATE;
  #running = false;
  #backlog = 0;

  constructor(accounts: readonly AccountLimits[], hooks: DispatcherHooks) {
    this.#accounts = accounts;
    this.#hooks = hooks;
  }

  /** Admit stored `entry`: it waits, FIFO within its lane. */
  enqueue(entry: QueueEntry): void {
    this.#waiting[entry.lane].push(entry);
  }

  /** Poll saw the slot's task start running at `startedAt`. */
  started(id: string, startedAt: number): void {
    const slot = this.#slots.get(id);
    if (slot && slot.startedAt === undefined) this.#slots.set(id, { ...slot, startedAt });
  }

  /** Frees the slot of `id`, if it holds one. */
  release(id: string): void {
    this.#slots.delete(id);
  }

  /** Slots held now, on every account. */
  get held(): number {
    return this.#slots.size;
  }

  /** An asynchronous invocation reaching Lambda at `atMs`. */
  kick(atMs: number): void {
    this.#hooks.schedule(atMs + this.#hooks.invokeMs, () => {
      if (this.#running) this.#backlog += 1;
      else this.#run(atMs + this.#hooks.invokeMs);
    });
  }

  /** The schedule's sweep: one invocation every `sweepSeconds` after `fromMs`, while `more()` says so. */
  sweep(fromMs: number, more: () => boolean): void {
    const atMs = fromMs + ADMISSION_SETTINGS.sweepSeconds * 1000;
    this.#hooks.schedule(atMs, () => {
      if (!more()) return;
      this.kick(atMs);
      this.sweep(atMs, more);
    });
  }

  #run(startMs: number): void {
    const { storeCallMs, awsCallMs, cpuMs } = DISPATCHER_ASSUMPTIONS;
    this.#running = true;
    this.invocations += 1;
    // The state, the head of each lane, each account's slots.
    const reads = 1 + 2 + this.#accounts.length;
    this.storeReads += reads;
    let at = startMs + reads * storeCallMs;
    const slots = [...this.#slots.values()];
    const free = this.#accounts.reduce(
      (total, account) =>
        total + Math.max(0, account.depth - slots.filter((slot) => slot.account === account.name).length),
      0,
    );
    const plan = planGrants({
      now: at,
      accounts: this.#accounts,
      slots,
      waiting: {
        interactive: this.#waiting.interactive.slice(0, free),
        batch: this.#waiting.batch.slice(0, free),
      },
      state: this.#state,
      rules: ADMISSION_SETTINGS.rules,
    });
    for (const grant of plan.grants) {
      const lane = this.#waiting[grant.entry.lane];
      if (lane[0]?.id !== grant.entry.id)
        throw new Error(`grant of ${grant.entry.id} is not its lane's head`);
      lane.shift();
      this.#slots.set(grant.entry.id, {
        id: grant.entry.id,
        account: grant.account,
        lane: grant.entry.lane,
        grantedAt: grant.atMs,
        expectedRunSeconds: grant.entry.expectedRunSeconds,
      });
      at = Math.max(at, grant.atMs) + storeCallMs + awsCallMs;
      this.storeWrites += 1;
      this.#hooks.granted(grant.entry.id, grant.account, at);
    }
    this.#state = plan.state;
    this.storeWrites += 1;
    const endMs = at + storeCallMs + cpuMs;
    this.billedMs += Math.ceil(endMs - startMs);
    this.#hooks.schedule(endMs, () => {
      this.#running = false;
      if (this.#backlog === 0) return;
      this.#backlog -= 1;
      this.#run(endMs);
    });
  }
}
