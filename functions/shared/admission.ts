import * as z from 'zod';
import { WORKFLOW_ERROR } from './errors.js';

/**
 * Admission control: a generation waits in our own queue until the dispatcher grants it a submit
 * slot on one DashScope account. This module holds the pure rules (lanes, the grant plan, the
 * start estimate) and the port of the queue's store; the dispatcher function applies them and
 * the API shows their estimate. See docs/admission.md and docs/decisions/0005-admission-before-submit.md.
 */

/** The priority lanes, highest first. */
export const LANES = ['interactive', 'batch'] as const;
export const laneSchema = z.enum(LANES, { error: 'must be "interactive" or "batch"' });
export type Lane = z.infer<typeof laneSchema>;

/** The lane of a request that names none: the API's are interactive, every other way in batch. */
export const DEFAULT_LANE = { api: 'interactive', other: 'batch' } as const satisfies Record<string, Lane>;

/** The account name of a deployment configured with one key (`dashscopeApiKeySecretName`). */
export const DEFAULT_ACCOUNT = 'default';

/** One DashScope account as the dispatcher sees it. */
export interface AccountLimits {
  /** The account's name in the configuration (`dashscopeAccounts[].name`). */
  readonly name: string;
  /**
   * Tasks outstanding at DashScope (PENDING or RUNNING) the dispatcher allows at once: one
   * running plus one waiting keeps the account's single runner busy without a queue there.
   */
  readonly depth: number;
  /** DashScope's submit limit per account (2/s). Grants are spaced to stay under it. */
  readonly submitsPerSecond: number;
}

/** A generation waiting for a slot. */
export interface QueueEntry {
  readonly id: string;
  readonly lane: Lane;
  /** When it entered the queue, ms since the epoch: FIFO order within a lane. */
  readonly enqueuedAt: number;
  /** The expected run at DashScope, seconds (run-time-estimate.ts), for the start estimate. */
  readonly expectedRunSeconds: number;
}

/** A granted generation: it holds one of its account's slots until its task ends. */
export interface Slot {
  readonly id: string;
  readonly account: string;
  readonly lane: Lane;
  readonly grantedAt: number;
  readonly expectedRunSeconds: number;
  /** When its task started running at DashScope, once known. */
  readonly startedAt?: number;
  /** When its execution first sent the submit, and the seed it sent (an orphan's, if the answer is lost). */
  readonly submitAttemptAt?: number;
  readonly submitSeed?: number;
  /** When the submit was answered, and the task it created. */
  readonly submittedAt?: number;
  readonly taskId?: string;
}

/** What the dispatcher keeps between runs, in one item with the lanes' counters ({@link LaneCounters}). */
export interface DispatcherState {
  /** Interactive grants in a row while batch waited: its only memory for the lane rules. */
  readonly interactiveStreak: number;
  /**
   * When each account's runner is expected to be free, ms since the epoch, as of the last grant:
   * now plus the expected rest of every task it holds ({@link planGrants}). Not read by the
   * dispatcher: the API's start estimate reads it, so a GET reads no slot. Absent before any grant.
   */
  readonly runnersFreeAt?: Readonly<Record<string, number>>;
}
export const INITIAL_DISPATCHER_STATE: DispatcherState = { interactiveStreak: 0 };

export interface LaneRules {
  /**
   * While both lanes wait, at least one grant in every `batchEvery` goes to batch: interactive
   * requests go first, and a steady stream of them still leaves batch a share of
   * 1/`batchEvery` of the throughput, so neither lane starves.
   */
  readonly batchEvery: number;
}
export const DEFAULT_LANE_RULES: LaneRules = { batchEvery: 4 };

/** One decision of the plan: give `entry` a slot on `account`, not before `atMs`. */
export interface Grant {
  readonly entry: QueueEntry;
  readonly account: string;
  /** The earliest moment the grant may go out (the account's submit spacing). */
  readonly atMs: number;
}

export interface PlanInput {
  readonly now: number;
  readonly accounts: readonly AccountLimits[];
  /** Every slot currently held, on any account. */
  readonly slots: readonly Slot[];
  /** The head of each lane, oldest first (at least as many as there are free slots). */
  readonly waiting: Readonly<Record<Lane, readonly QueueEntry[]>>;
  readonly state: DispatcherState;
  readonly rules?: LaneRules;
}

export interface Plan {
  readonly grants: readonly Grant[];
  /** The state after these grants, with each account's runner's expected free time after them. */
  readonly state: DispatcherState;
}

/** Extra spacing between two grants on one account, beyond 1/`submitsPerSecond`, for latency jitter. */
const SUBMIT_SPACING_MARGIN_MS = 100;

/**
 * Which queued generations get a slot now, and on which account. Pure.
 *
 * - **Depth:** an account gets grants only while it holds fewer than `depth` slots.
 * - **Lanes:** interactive first, FIFO within a lane; see {@link LaneRules.batchEvery} for batch's share.
 * - **Accounts:** each grant goes to the account with the earliest expected start: now plus the
 *   expected remaining run of every task it holds (ties: the fewest slots, then the name).
 * - **Submit rate:** grants on one account are at least 1/`submitsPerSecond` (+100 ms) apart,
 *   counting the slots' own grant times.
 */
export function planGrants(input: PlanInput): Plan {
  const rules = input.rules ?? DEFAULT_LANE_RULES;
  const accounts = input.accounts.map((limits) => {
    const held = input.slots.filter((slot) => slot.account === limits.name);
    return {
      limits,
      held: held.length,
      busyUntil: input.now + held.reduce((total, slot) => total + remainingMs(slot, input.now), 0),
      lastGrantAt: Math.max(Number.NEGATIVE_INFINITY, ...held.map((slot) => slot.grantedAt)),
    };
  });
  const heads = { interactive: [...input.waiting.interactive], batch: [...input.waiting.batch] };
  let streak = input.state.interactiveStreak;
  const grants: Grant[] = [];
  for (;;) {
    const free = accounts.filter((account) => account.held < account.limits.depth);
    if (free.length === 0) break;
    const lane = nextLane(heads, streak, rules);
    if (!lane) break;
    const entry = heads[lane].shift() as QueueEntry;
    if (lane === 'interactive' && heads.batch.length > 0) streak += 1;
    else streak = 0;
    const account = free.reduce((best, candidate) =>
      candidate.busyUntil < best.busyUntil ||
      (candidate.busyUntil === best.busyUntil &&
        (candidate.held < best.held ||
          (candidate.held === best.held && candidate.limits.name < best.limits.name)))
        ? candidate
        : best,
    );
    const spacingMs = 1000 / account.limits.submitsPerSecond + SUBMIT_SPACING_MARGIN_MS;
    const atMs = Math.max(input.now, account.lastGrantAt + spacingMs);
    grants.push({ entry, account: account.limits.name, atMs });
    account.held += 1;
    account.lastGrantAt = atMs;
    account.busyUntil += entry.expectedRunSeconds * 1000;
  }
  const runnersFreeAt = Object.fromEntries(
    accounts.map((account) => [account.limits.name, account.busyUntil]),
  );
  return { grants, state: { interactiveStreak: streak, runnersFreeAt } };
}

/** The lane the next grant comes from, or undefined when both are empty. */
function nextLane(
  heads: Readonly<Record<Lane, readonly QueueEntry[]>>,
  streak: number,
  rules: LaneRules,
): Lane | undefined {
  if (heads.interactive.length === 0) return heads.batch.length > 0 ? 'batch' : undefined;
  if (heads.batch.length === 0) return 'interactive';
  return streak >= rules.batchEvery - 1 ? 'batch' : 'interactive';
}

/** What is left of a slot's run, ms: all of it until its task starts, then the rest of the estimate. */
function remainingMs(slot: Slot, now: number): number {
  const runMs = slot.expectedRunSeconds * 1000;
  return slot.startedAt === undefined ? runMs : Math.max(0, slot.startedAt + runMs - now);
}

/** How many grants go out before a waiting generation's, by the lane rules, with the queue as it is. */
export function grantsAhead(input: {
  readonly lane: Lane;
  /** Entries ahead of it in its own lane. */
  readonly aheadInLane: number;
  /** Entries waiting in the other lane. */
  readonly otherLane: number;
  readonly state: DispatcherState;
  readonly rules?: LaneRules;
}): number {
  const every = (input.rules ?? DEFAULT_LANE_RULES).batchEvery;
  // Per cycle of `every` grants while both lanes wait: every − 1 interactive, then one batch.
  if (input.lane === 'interactive') {
    const batchTurns = Math.floor((input.aheadInLane + input.state.interactiveStreak) / (every - 1));
    return input.aheadInLane + Math.min(input.otherLane, batchTurns);
  }
  const interactiveFirst = Math.max(0, every - 1 - input.state.interactiveStreak);
  const interactiveTurns = interactiveFirst + input.aheadInLane * (every - 1);
  return input.aheadInLane + Math.min(input.otherLane, interactiveTurns);
}

/**
 * When a waiting generation's task is expected to start running, ms since the epoch: each
 * account's runner is busy with the slots it holds, then the `ahead` grants before this one go
 * each to the account free first, `typicalRunSeconds` each. An estimate: the requests ahead are
 * assumed to run as long as this one.
 */
export function estimateStartMs(input: {
  readonly now: number;
  readonly accounts: readonly AccountLimits[];
  readonly slots: readonly Slot[];
  readonly ahead: number;
  readonly typicalRunSeconds: number;
}): number {
  const free = input.accounts.map((account) =>
    input.slots
      .filter((slot) => slot.account === account.name)
      .reduce((total, slot) => total + remainingMs(slot, input.now), input.now),
  );
  return startAfter(free, input.ahead, input.typicalRunSeconds * 1000, input.now);
}

/**
 * {@link estimateStartMs} from when each account's runner is expected free (the dispatcher's
 * {@link DispatcherState.runnersFreeAt}, as of its last grant) instead of the slots themselves, so
 * the API reads no slot. An account it does not name, or whose time has passed, is free now.
 */
export function estimateStartFromRunners(input: {
  readonly now: number;
  readonly accounts: readonly AccountLimits[];
  readonly runnersFreeAt?: Readonly<Record<string, number>>;
  readonly ahead: number;
  readonly typicalRunSeconds: number;
}): number {
  const free = input.accounts.map((account) =>
    Math.max(input.now, input.runnersFreeAt?.[account.name] ?? input.now),
  );
  return startAfter(free, input.ahead, input.typicalRunSeconds * 1000, input.now);
}

/**
 * When the run after `ahead` others starts, each run `runMs` long going to the runner free first:
 * the (`ahead` + 1)-th smallest of every runner's free times `free[i] + j × runMs` (j ≥ 0). Found by
 * a binary search per runner, so it costs the same at any queue length.
 */
function startAfter(free: readonly number[], ahead: number, runMs: number, now: number): number {
  if (free.length === 0) return now;
  const first = Math.min(...free);
  if (ahead <= 0 || runMs <= 0) return first;
  // Starts at or before `t`, over every runner (a hair of slack for the float division).
  const startsBy = (t: number) =>
    free.reduce((total, f) => (t < f ? total : total + Math.floor((t - f) / runMs + 1e-9) + 1), 0);
  let best = Number.POSITIVE_INFINITY;
  for (const f of free) {
    let low = 0;
    let high = ahead;
    while (low < high) {
      const mid = Math.floor((low + high) / 2);
      if (startsBy(f + mid * runMs) >= ahead + 1) high = mid;
      else low = mid + 1;
    }
    best = Math.min(best, f + low * runMs);
  }
  return best;
}

/** A generation's place in the queue, as the API shows it. */
export interface QueuePosition {
  readonly lane: Lane;
  /** Grants that go out before this one (0: next). */
  readonly position: number;
  readonly estimatedStartAt: string;
}

/** A waiting entry as the store returns it: with the token that resumes its execution. */
export interface WaitingEntry extends QueueEntry {
  readonly token: string;
}

/** What {@link AdmissionQueue.note} records on a slot. */
export type SlotProgress = Partial<
  Pick<Slot, 'submitAttemptAt' | 'submitSeed' | 'submittedAt' | 'taskId' | 'startedAt'>
>;

/** The entry (waiting) or the slot (granted) of one generation. */
export type AdmissionRecord =
  | (WaitingEntry & {
      readonly kind: 'waiting';
      /** Its sequence number in its lane ({@link LaneCounters}); absent on an entry older than them. */
      readonly seq?: number;
    })
  | (WaitingEntry & Slot & { readonly kind: 'granted' });

/**
 * A lane's two counters, kept on the dispatcher's state item so that a position costs one read at
 * any queue length (docs/admission.md, "Seeing the queue"):
 * - `tail`: the sequence number the lane's last new entry took (Admit takes the next: one atomic
 *   add per new entry; an entry enqueued again keeps its own);
 * - `head`: the lowest that may still wait: one past the highest granted (grants go oldest first),
 *   or past the head itself when it leaves otherwise (cancelled, timed out).
 *
 * Entries between the two that left out of order (a cancel behind the head) are still counted,
 * until the head passes them; an entry that waits again below the head (a redriven execution whose
 * slot was never used) is not. Both stay off by those few only, and only until the head moves on.
 */
export interface LaneCounters {
  readonly tail: number;
  readonly head: number;
}
/** A lane that never had an entry. */
export const EMPTY_LANE: LaneCounters = { tail: 0, head: 1 };

/** Entries waiting in a lane, by its counters ({@link LaneCounters} says how exact). */
export const waitingIn = (lane: LaneCounters): number => Math.max(0, lane.tail - lane.head + 1);

/**
 * Entries of its lane ahead of the one with sequence number `seq`: those from the head up to it. An
 * entry below the head (waiting again at its first place), or without a number, is at the head.
 */
export const aheadIn = (lane: LaneCounters, seq: number | undefined): number =>
  seq === undefined ? 0 : Math.min(Math.max(0, seq - lane.head), Math.max(0, waitingIn(lane) - 1));

/** One read of where generations stand ({@link AdmissionQueue.standing}). */
export interface QueueStanding {
  /** The records found, by generation id. */
  readonly records: ReadonlyMap<string, AdmissionRecord>;
  readonly lanes: Readonly<Record<Lane, LaneCounters>>;
  readonly state: DispatcherState;
}

/**
 * The queue's store: entries while they wait, slots while their task is outstanding. Adapters:
 * DynamoDB (`functions/shared/aws/dynamodb-admission.ts`, items in the generations table) and
 * in memory (`local/memory-admission.ts`), held to one contract by test/contract.
 */
export interface AdmissionQueue {
  /**
   * Adds a generation with the token that resumes its execution; every write is conditional on
   * what was read, so no write of another (a grant, a note, a racing enqueue) is lost:
   * - **absent:** created, only if still absent, with the next sequence number of its lane
   *   ({@link LaneCounters}: one atomic add on the counters' item, taken before the create; a
   *   create that loses a race leaves that number unused, counted until the head passes it);
   * - **present, another token** (Admit retried, or its execution redriven after its process
   *   died): keeps its first place (`enqueuedAt`) and takes the new token; a granted one whose
   *   execution never attempted a submit gives its slot back and waits again, first in its lane;
   * - **present, the same token**, or a slot whose execution attempted a submit already (that
   *   Admit is stale: its execution went past Admit): left as it is.
   */
  enqueue(entry: WaitingEntry): Promise<void>;
  /** The oldest `limit` entries of a lane, oldest first. */
  waiting(lane: Lane, limit: number): Promise<readonly WaitingEntry[]>;
  /**
   * How many entries of `lane` wait, exactly: reads the whole lane (the local engine's health, the
   * tests), never on a request's path; {@link standing} counts by the lanes' counters instead.
   */
  count(lane: Lane): Promise<number>;
  get(id: string): Promise<AdmissionRecord | undefined>;
  /**
   * Where the generations `ids` stand: their records, the lanes' counters and the dispatcher's
   * state, in one read whose cost does not grow with the queue (DynamoDB: one eventually
   * consistent BatchGetItem, 0.5 read unit per item up to 4 KB). What the API shows a waiting
   * generation; a moment stale at most.
   */
  standing(ids: readonly string[]): Promise<QueueStanding>;
  /** Every slot held on `account`. */
  slots(account: string): Promise<readonly Slot[]>;
  /**
   * Turns a waiting entry into a slot on `account`; false when it no longer waits (released, or
   * granted already), or, with `token`, when it no longer waits with that token (enqueued again
   * since it was read: the grant is the new token's, on a later run). Moves its lane's head past
   * the entry's sequence number (one conditional write more, on the counters' item).
   */
  grant(id: string, account: string, grantedAt: number, token?: string): Promise<boolean>;
  /**
   * Records the slot's progress, each field once (a later note never overwrites it): the submit's
   * attempt and seed, its answer and task, when the task started running.
   */
  note(id: string, progress: SlotProgress): Promise<void>;
  /**
   * Frees the slot or drops the entry of a generation; nothing if there is none. Idempotent. With
   * `token`, only while the record holds that token: a release decided on a token read before
   * the entry was enqueued again leaves the new entry alone. True when it removed a record. A
   * waiting entry that was its lane's head moves the head past it (a conditional write more).
   */
  release(id: string, token?: string): Promise<boolean>;
  /**
   * Remembers a task this deployment created on `account` (kept past its slot's release), so an
   * orphan of a lost submit answer is told apart from our own tasks.
   */
  recordTask(account: string, taskId: string, at: number): Promise<void>;
  /** The tasks recorded on `account` at or after `since`. */
  recentTasks(account: string, since: number): Promise<ReadonlySet<string>>;
  /** Forgets the tasks recorded on `account` before `before` (the dispatcher's sweep). */
  pruneTasks(account: string, before: number): Promise<void>;
  readState(): Promise<DispatcherState>;
  /** Replaces the dispatcher's state; the lanes' counters beside it are left as they are. */
  writeState(state: DispatcherState): Promise<void>;
}

/**
 * The dispatcher's lease: one run at a time over one store, whatever runs it (no reserved
 * concurrency on AWS). A run takes the lease, or leaves a request for its holder and returns at
 * once; the holder ends its turn only when no request came, else it runs once more. Held until
 * `expiresAt`, renewed while a run lasts; a holder that died is taken over once its lease ran out.
 * The protocol: docs/admission.md, "One run at a time". Adapters: DynamoDB (the item
 * {@link DISPATCHER_LEASE_ID}) and in memory, held to one contract by test/contract.
 */
export interface DispatcherLease {
  /**
   * Takes the lease for `owner` until `until` when nobody holds it, or its holder's ran out before
   * `now`. A request left for the previous holder is dropped: this turn's run starts after it.
   */
  take(owner: string, now: number, until: number): Promise<boolean>;
  /** Extends `owner`'s lease to `until`; false when it is not its own any more (taken over). */
  renew(owner: string, until: number): Promise<boolean>;
  /**
   * Asks the holder of a lease still valid at `now` for one more run; false when there is none
   * (released, or run out): the caller takes the lease itself.
   */
  request(now: number): Promise<boolean>;
  /**
   * Ends `owner`'s turn. `released`: no request came, the lease is free. `again`: a request came
   * during the run; it is cleared and the lease renewed to `until`: run once more, then finish
   * again. `lost`: the lease is not `owner`'s any more.
   */
  finish(owner: string, until: number): Promise<'released' | 'again' | 'lost'>;
  /**
   * Gives the lease up at once, keeping a pending request for whoever takes it next (a holder
   * out of time, or whose run failed). Nothing if it is not `owner`'s.
   */
  handOff(owner: string): Promise<void>;
}

/** What the dispatcher hands a granted execution: the Admit state's result (`$.admission`). */
export interface AdmissionGrant {
  readonly account: string;
  readonly grantedAt: string;
}

/** Resumes or fails an execution waiting in the Admit state (Step Functions' task tokens). */
export interface ExecutionResumer {
  /** 'gone' when nothing waits on the token any more (stopped, timed out, resumed already). */
  resume(token: string, grant: AdmissionGrant): Promise<'resumed' | 'gone'>;
  fail(token: string, error: string, cause: string): Promise<'failed' | 'gone'>;
}

/** Asks the dispatcher to run soon (an entry arrived, a slot was freed); never waits for the run. */
export type DispatchKick = () => Promise<void>;

/**
 * What the workflow's functions use of admission: the store and the dispatcher's doorbell. Its
 * writes go through slot-life.ts, the one owner of a slot's life.
 */
export interface Admission {
  readonly queue: AdmissionQueue;
  readonly kick: DispatchKick;
}

/** The store's key attributes and index names: the CDK table and the adapter both read these. */
export const ADMISSION_KEY = {
  /** `byQueue`'s partition key: the lane, present while waiting. */
  lane: 'queueLane',
  /** `byQueue`'s sort key: `enqueuedAt` (zero-padded ms) `#` id. */
  queueKey: 'queueKey',
  /** `bySlot`'s partition key: the account, present while granted. */
  account: 'slotAccount',
  /** `bySlot`'s sort key: the generation id. */
  slotKey: 'slotKey',
} as const;
export const ADMISSION_INDEX = { byQueue: 'byQueue', bySlot: 'bySlot' } as const;

/** The item id of a generation's queue record: `#` never occurs in a generation id. */
export const admissionItemId = (id: string) => `admission#${id}`;
/** The item id of an account's recently created tasks. */
export const recentTasksItemId = (account: string) => `admission#tasks#${account}`;
/** How long a created task is remembered: longer than any submit and its retries. */
export const RECENT_TASKS_MS = 15 * 60 * 1000;
/** The item id of the dispatcher's state. */
export const DISPATCHER_STATE_ID = 'admission#dispatcher';
/**
 * The item id of the dispatcher's lease: a second `#`, so no generation's queue item
 * (`admission#{id}`, where an id never holds `#`) can take it.
 */
export const DISPATCHER_LEASE_ID = 'admission#dispatcher#lease';
/**
 * How long a dispatcher's lease lasts without renewal: a holder renews it while it runs, so this
 * bounds only how long a dead holder (a crash, a timeout) keeps the others out.
 */
export const DISPATCHER_LEASE_MS = 30_000;

/** The error a generation ends with when it waited in the queue longer than `maxQueueSeconds`. */
export const QUEUE_TIMEOUT_ERROR = WORKFLOW_ERROR.queueTimeExceeded;

/**
 * The admission settings the dispatcher and the API share (`ADMISSION`, JSON), from the stack
 * configuration's `admission` and `dashscopeAccounts`.
 */
export const admissionSettingsSchema = z.strictObject({
  accounts: z
    .array(
      z.strictObject({
        name: z.string().min(1),
        depth: z.int().min(1).max(20),
        submitsPerSecond: z.number().positive().max(100),
      }),
    )
    .min(1),
  batchEvery: z.int().min(2).max(1000),
  maxQueueSeconds: z.int().positive(),
});
export type AdmissionSettings = z.infer<typeof admissionSettingsSchema>;

/** The defaults of the stack configuration's `admission`. */
export const ADMISSION_DEFAULTS = {
  depth: 2,
  submitsPerSecond: 2,
  batchEvery: DEFAULT_LANE_RULES.batchEvery,
  /** 7 days: well within a Standard execution's year. */
  maxQueueSeconds: 7 * 24 * 3600,
} as const;
