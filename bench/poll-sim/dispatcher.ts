import {
  type AccountLimits,
  ADMISSION_DEFAULTS,
  compareInLane,
  DEFAULT_LANE_RULES,
  type DispatcherState,
  INITIAL_DISPATCHER_STATE,
  type Lane,
  type LaneCounters,
  type LaneRules,
  planGrants,
  type QueueEntry,
  roundOf,
  runMsOf,
  type Slot,
} from '../../functions/shared/admission.js';
import { batchOfId } from '../../functions/shared/batch.js';
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
 * an asynchronous Lambda Invoke) 25 ms. Its memory is the synthesized function's (WorkflowShape).
 */
export const DISPATCHER_ASSUMPTIONS = {
  storeCallMs: 10,
  awsCallMs: 25,
  /** Planning and logging per run, at the synthesized 128 MB. */
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
 * DynamoDB request units of the admission queue's operations, as on-demand DynamoDB bills them: a
 * write 1 WRU per KB of the item on the table, and again on each index whose entry it adds,
 * changes or removes (every index of the table projects all attributes); a write its condition
 * refuses, or a Delete of nothing, 1 WRU; a GetItem 1 RRU per 4 KB strongly consistent (every
 * GetItem of the queue's adapter is), a Query 0.5 per 4 KB read (an index is eventually
 * consistent). The items are well under 1 KB, but an account's recent tasks
 * ({@link SimDispatcher.recordTask}). The operations: functions/shared/aws/dynamodb-admission.ts.
 */
export const QUEUE_UNITS = {
  /** Admit: reads its entry, takes its lane's numbers and clock (the counters' item, in no index), creates the entry (table, `byQueue`). */
  enqueue: { read: 1, write: 1 + 2 },
  /** The dispatcher: the entry leaves `byQueue` and joins `bySlot` (table and both), and its lane counts it as left. */
  grant: { read: 0, write: 3 + 1 },
  /** Submit: reads its slot, notes the attempt, then the task (table and `bySlot` each); the account's task is apart. */
  submit: { read: 1, write: 2 + 2 },
  /** Poll: the task's start (table and `bySlot`). */
  start: { read: 0, write: 2 },
  /** Poll: the slot's release when the task ended (a Delete, table and `bySlot`). */
  release: { read: 0, write: 2 },
  /** Notify's and the reconciler's releases after Poll's: a Delete of nothing. */
  releaseNothing: { read: 0, write: 1 },
  /** A run's reads: each lane's head (a Query of one item), each account's slots (a Query), its recent tasks and the state (GetItems). */
  laneHead: 0.5,
  slots: 0.5,
  recentTasks: 1,
  state: 1,
  /** The state written after a run's grants. */
  stateWrite: 1,
  /**
   * The lease (docs/admission.md, "One run at a time"), an item in no index: taken by a Put and
   * released by a Delete; a kick that finds it held writes twice (the refused take, the request),
   * and the holder twice more for the run it owes (the refused release, clearing the request).
   */
  leaseTake: 1,
  leaseRelease: 1,
  leaseRequest: 2,
  leaseAgain: 2,
  leaseRenew: 1,
  /** An account's recent tasks: one map entry per task (a 36-character id and a time), and the item's own. */
  recentTaskBytes: 50,
  recentTasksItemBytes: 60,
} as const;

/** How long an account's created tasks are kept in its recent-tasks item (`RECENT_TASKS_MS`). */
const RECENT_TASKS_MS = 15 * 60 * 1000;

/**
 * The dispatcher Lambda in virtual time, applying the real `planGrants` to lanes kept in the
 * store's fair order (each entry's round from its lane's clock, as the adapters give it, and
 * `compareInLane`). Runs take turns through
 * the lease (functions/dispatch/dispatch.ts, `dispatchInTurn`): an invocation that finds a run
 * going leaves a request and returns; the holder runs once more after its run for every request
 * that came (several coalesce into one). Each run reads each lane's head and each account's slots
 * and recent tasks (pruning those older than 15 minutes), plans with the state, then for each grant
 * waits for its `atMs`, writes the grant and calls SendTaskSuccess, and writes its state. The
 * one-minute sweep also measures the queue (`OldestWaitingSeconds`: the heads and the slots again).
 */
export class SimDispatcher {
  /** Invocations: kicks and sweeps. */
  invocations = 0;
  /** Runs: the invocations that took the lease, and the runs owed to requests. */
  runs = 0;
  /** Billed ms of every invocation, its waits for `atMs` included. */
  billedMs = 0;
  /** DynamoDB request units of the dispatcher's invocations, lease included (see {@link QUEUE_UNITS}). */
  readUnits = 0;
  writeUnits = 0;
  readonly #accounts: readonly AccountLimits[];
  readonly #hooks: DispatcherHooks;
  /** Each lane in its fair order. */
  readonly #waiting: Record<Lane, QueueEntry[]> = { interactive: [], batch: [] };
  /** Each lane's entries so far, and its singles: the numbers Admit takes. */
  readonly #taken: Record<Lane, { arrival: number; solo: number }> = {
    interactive: { arrival: 0, solo: 0 },
    batch: { arrival: 0, solo: 0 },
  };
  /** Each lane's entries outside any batch, waiting; and the expected runs of all its entries waiting, ms. */
  readonly #singles: Record<Lane, number> = { interactive: 0, batch: 0 };
  readonly #runMs: Record<Lane, number> = { interactive: 0, batch: 0 };
  readonly #slots = new Map<string, Slot>();
  /** Each account's recorded tasks, by when they were created. */
  readonly #tasks = new Map<string, number[]>();
  #state: DispatcherState = INITIAL_DISPATCHER_STATE;
  #running = false;
  #requested = false;

  constructor(accounts: readonly AccountLimits[], hooks: DispatcherHooks) {
    this.#accounts = accounts;
    this.#hooks = hooks;
  }

  /** The dispatcher's state as last written: what the API reads (`standing`). */
  get state(): DispatcherState {
    return this.#state;
  }

  /** The lanes' counters as the adapters keep them ({@link LaneCounters}): what the API reads with the state. */
  lanes(): Record<Lane, LaneCounters> {
    const countersOf = (lane: Lane): LaneCounters => {
      const taken = this.#taken[lane];
      return {
        tail: taken.arrival,
        head: taken.arrival - this.#waiting[lane].length + 1,
        soloTail: taken.solo,
        soloHead: taken.solo - this.#singles[lane] + 1,
        runMs: this.#runMs[lane],
      };
    };
    return { interactive: countersOf('interactive'), batch: countersOf('batch') };
  }

  /** Admit stored `entry`: it waits in its lane's fair order, its round from the lane's clock. */
  enqueue(entry: QueueEntry): void {
    const line = batchOfId(entry.id)?.line;
    const taken = this.#taken[entry.lane];
    taken.arrival += 1;
    if (line === undefined) {
      taken.solo += 1;
      this.#singles[entry.lane] += 1;
    }
    this.#runMs[entry.lane] += runMsOf(entry.expectedRunSeconds);
    const placed: QueueEntry = {
      ...entry,
      order: {
        round: roundOf(this.#state.rounds?.[entry.lane]?.clock ?? 0, line),
        arrival: taken.arrival,
        ...(line === undefined ? { solo: taken.solo } : {}),
      },
    };
    // Where it goes: after every entry it does not precede (most come last: a binary search).
    const lane = this.#waiting[entry.lane];
    let low = 0;
    let high = lane.length;
    while (low < high) {
      const mid = (low + high) >> 1;
      if (compareInLane(lane[mid] as QueueEntry, placed) <= 0) low = mid + 1;
      else high = mid;
    }
    lane.splice(low, 0, placed);
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

  /**
   * Submit recorded a task created on `account` at `atMs` (`recordTask`, one write on the
   * account's recent-tasks item); returns its write units: the item's size in KB, rounded up.
   */
  recordTask(account: string, atMs: number): number {
    const tasks = (this.#tasks.get(account) ?? []).filter((at) => at >= atMs - RECENT_TASKS_MS);
    tasks.push(atMs);
    this.#tasks.set(account, tasks);
    return this.#tasksItemUnits(tasks.length);
  }

  /** Slots held now, on every account. */
  get held(): number {
    return this.#slots.size;
  }

  /** An asynchronous invocation reaching Lambda at `atMs`; `sweep` for the schedule's. */
  kick(atMs: number, sweep = false): void {
    const startMs = atMs + this.#hooks.invokeMs;
    this.#hooks.schedule(startMs, () => {
      const { storeCallMs, cpuMs } = DISPATCHER_ASSUMPTIONS;
      this.invocations += 1;
      if (this.#running) {
        // The lease is held: a refused take and a request, then the invocation returns.
        this.#requested = true;
        this.writeUnits += QUEUE_UNITS.leaseRequest;
        this.billedMs += 2 * storeCallMs + cpuMs;
        return;
      }
      this.#running = true;
      this.writeUnits += QUEUE_UNITS.leaseTake;
      this.#run(startMs + storeCallMs, startMs, sweep);
    });
  }

  /** The schedule's sweep: one invocation every `sweepSeconds` after `fromMs`, while `more()` says so. */
  sweep(fromMs: number, more: () => boolean): void {
    const atMs = fromMs + ADMISSION_SETTINGS.sweepSeconds * 1000;
    this.#hooks.schedule(atMs, () => {
      if (!more()) return;
      this.kick(atMs, true);
      this.sweep(atMs, more);
    });
  }

  /** The write units of an account's recent-tasks item holding `tasks`. */
  #tasksItemUnits(tasks: number): number {
    return Math.ceil((QUEUE_UNITS.recentTasksItemBytes + tasks * QUEUE_UNITS.recentTaskBytes) / 1024);
  }

  /** One run from `startMs`, in the invocation that began at `invocationMs`. */
  #run(startMs: number, invocationMs: number, sweep: boolean): void {
    const { storeCallMs, awsCallMs, cpuMs } = DISPATCHER_ASSUMPTIONS;
    this.runs += 1;
    // Each lane's head, each account's recent tasks (pruned) and slots.
    let reads = 2 + 2 * this.#accounts.length;
    this.readUnits +=
      2 * QUEUE_UNITS.laneHead + this.#accounts.length * (QUEUE_UNITS.recentTasks + QUEUE_UNITS.slots);
    for (const account of this.#accounts) {
      const tasks = this.#tasks.get(account.name) ?? [];
      const kept = tasks.filter((at) => at >= startMs - RECENT_TASKS_MS);
      if (kept.length < tasks.length) {
        this.#tasks.set(account.name, kept);
        this.writeUnits += this.#tasksItemUnits(tasks.length);
        reads += 1;
      }
    }
    let at = startMs + reads * storeCallMs;
    const slots = [...this.#slots.values()];
    const free = this.#accounts.reduce(
      (total, account) =>
        total + Math.max(0, account.depth - slots.filter((slot) => slot.account === account.name).length),
      0,
    );
    if (free > 0) {
      // The lanes' heads again, one more than the free slots (does any still wait after?), and the state.
      this.readUnits += 2 * QUEUE_UNITS.laneHead + QUEUE_UNITS.state;
      at += 3 * storeCallMs;
      const plan = planGrants({
        now: at,
        accounts: this.#accounts,
        slots,
        waiting: {
          interactive: this.#waiting.interactive.slice(0, free + 1),
          batch: this.#waiting.batch.slice(0, free + 1),
        },
        state: this.#state,
        rules: ADMISSION_SETTINGS.rules,
      });
      for (const grant of plan.grants) {
        const lane = this.#waiting[grant.entry.lane];
        if (lane[0]?.id !== grant.entry.id)
          throw new Error(`grant of ${grant.entry.id} is not its lane's head`);
        lane.shift();
        if (grant.entry.order?.solo !== undefined) this.#singles[grant.entry.lane] -= 1;
        this.#runMs[grant.entry.lane] -= runMsOf(grant.entry.expectedRunSeconds);
        this.#slots.set(grant.entry.id, {
          id: grant.entry.id,
          account: grant.account,
          lane: grant.entry.lane,
          grantedAt: grant.atMs,
          expectedRunSeconds: grant.entry.expectedRunSeconds,
        });
        at = Math.max(at, grant.atMs) + 2 * storeCallMs + awsCallMs;
        this.writeUnits += QUEUE_UNITS.grant.write;
        this.#hooks.granted(grant.entry.id, grant.account, at);
      }
      // Written after grants, and, as functions/dispatch/dispatch.ts does, when only the pace changed.
      const paceChanged = this.#accounts.some(({ name }) => {
        const [a, b] = [plan.state.pace?.[name], this.#state.pace?.[name]];
        return a?.freed !== b?.freed || a?.overMs !== b?.overMs || a?.fullSince !== b?.fullSince;
      });
      if (plan.grants.length > 0 || paceChanged) {
        this.#state = plan.state;
        this.writeUnits += QUEUE_UNITS.stateWrite;
        at += storeCallMs;
      }
    }
    if (sweep) {
      // OldestWaitingSeconds: each lane's head and each account's slots.
      this.readUnits += 2 * QUEUE_UNITS.laneHead + this.#accounts.length * QUEUE_UNITS.slots;
      at += (2 + this.#accounts.length) * storeCallMs;
    }
    const endMs = at + storeCallMs + cpuMs;
    this.#hooks.schedule(endMs, () => {
      // Renewed whenever less than half of the 30-s lease is left: once per 15 s held.
      this.writeUnits += Math.floor((endMs - startMs) / 15_000) * QUEUE_UNITS.leaseRenew;
      if (this.#requested) {
        // A request came during the run: the refused release, the request cleared, one more run.
        this.#requested = false;
        this.writeUnits += QUEUE_UNITS.leaseAgain;
        this.#run(endMs + storeCallMs, invocationMs, false);
        return;
      }
      this.writeUnits += QUEUE_UNITS.leaseRelease;
      this.#running = false;
      this.billedMs += Math.ceil(endMs - invocationMs);
    });
  }
}
