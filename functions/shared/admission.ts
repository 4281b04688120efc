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
  /** When it entered the queue, ms since the epoch: the order within a round of its lane. */
  readonly enqueuedAt: number;
  /** The expected run at DashScope, seconds (run-time-estimate.ts), for the start estimate. */
  readonly expectedRunSeconds: number;
  /**
   * Its place in its lane's fair order, given by the store when the entry is first created and
   * kept when it is enqueued again ({@link QueueOrder}); what `enqueue` is given here is ignored.
   * Absent on an entry older than the fair order.
   */
  readonly order?: QueueOrder;
}

/**
 * Where an entry stands in its lane's fair order (docs/admission.md, "Fair share across
 * batches"). A lane is served by round, then by `enqueuedAt`, then by id: each batch that waits
 * has one line in each round, and a generation outside any batch counts as a batch of one, so
 * grants go round-robin across the batches that wait.
 */
export interface QueueOrder {
  /**
   * Its round: the lane's clock when it came ({@link LaneRound.clock}) plus its line in its batch
   * (`<batch id>-<line>`; 1 outside any batch). See {@link roundOf}.
   */
  readonly round: number;
  /** Its number among the entries of its lane ({@link LaneCounters.tail}). */
  readonly arrival: number;
  /** Outside any batch: its number among its lane's singles ({@link LaneCounters.soloTail}). */
  readonly solo?: number;
}

/**
 * The round of a new entry: one round after the lane's clock for a generation outside any batch,
 * and line `k` of a batch `k` rounds after it. So a batch that arrives while another is at round
 * 30 has its lines interleaved one for one with the other's from round 31 on; a generation outside
 * any batch goes in the next round, behind the singles before it (their rounds are never later).
 */
export const roundOf = (clock: number, line: number | undefined): number => clock + Math.max(1, line ?? 1);

/**
 * The order of a lane: by round, then by when each entry came, then by id. An entry without a
 * round (older than the fair order) goes first, by when it came, as the store's key sorts them.
 */
export function compareInLane(
  a: Pick<QueueEntry, 'order' | 'enqueuedAt' | 'id'>,
  b: Pick<QueueEntry, 'order' | 'enqueuedAt' | 'id'>,
): number {
  const round = (entry: typeof a) => entry.order?.round ?? Number.NEGATIVE_INFINITY;
  if (round(a) !== round(b)) return round(a) < round(b) ? -1 : 1;
  return a.enqueuedAt - b.enqueuedAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
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

/**
 * A lane's virtual clock in its fair order, moved by the dispatcher's grants ({@link planGrants}):
 * new entries take their rounds from it ({@link roundOf}), and a position counts the rounds ahead.
 */
export interface LaneRound {
  /** The round of the lane's latest grant (only forward). */
  readonly clock: number;
  /** Batch lines granted in the last round that ended (or more in this one): about how many batches share the lane. */
  readonly width: number;
  /** Batch lines granted so far in round `clock`. */
  readonly lines: number;
}
export const FIRST_ROUND: LaneRound = { clock: 0, width: 0, lines: 0 };

/** What the dispatcher keeps between runs, in one item with the lanes' counters ({@link LaneCounters}). */
export interface DispatcherState {
  /** Interactive grants in a row while batch waited: its only memory for the lane rules. */
  readonly interactiveStreak: number;
  /** Each lane's clock in its fair order, once it had a grant of an entry with a round. */
  readonly rounds?: Readonly<Partial<Record<Lane, LaneRound>>>;
  /**
   * When each account's runner is expected to be free, ms since the epoch, as of the last grant:
   * now plus the expected rest of every task it holds ({@link planGrants}). Not read by the
   * dispatcher: the API's start estimate reads it, so a GET reads no slot. Absent before any grant.
   */
  readonly runnersFreeAt?: Readonly<Record<string, number>>;
  /**
   * Each account's observed pace: how fast its slots free up while it is full and entries wait
   * ({@link AccountPace}, moved by {@link planGrants}). The start estimates read it (the API in the
   * same read as the counters): what really limits the rate, not the run-time model. Absent
   * before an account was ever full with entries waiting.
   */
  readonly pace?: Readonly<Record<string, AccountPace>>;
}
export const INITIAL_DISPATCHER_STATE: DispatcherState = { interactiveStreak: 0 };

/**
 * What the dispatcher has seen of one account's pace: the slots it freed while it was full with
 * entries waiting, and the time that took, each an exponentially decayed sum (every slot freed
 * weighs the older ones by 1 − 1/{@link PACE_MEMORY}), so `overMs / freed` is a recent mean of the
 * ms between two slots freed: one grant's worth of the account's throughput, whatever limits it
 * (the task's run, DashScope's queue, Poll seeing the end, the submit spacing). While the account
 * is full a slot frees only when a task ends, so, with entries waiting, each is a completion.
 */
export interface AccountPace {
  /** Slots freed while full with entries waiting (decayed). */
  readonly freed: number;
  /** The ms they took (decayed alike). */
  readonly overMs: number;
  /**
   * While the account is full and entries wait: the run that last saw it so (when it filled it,
   * or saw slots freed and filled them again), ms. The next run that finds slots free counts them
   * over the time since. Absent otherwise: a slot that frees then is not timed.
   */
  readonly fullSince?: number;
}

/** How many recent slots freed the pace remembers: each new one weighs the rest by 1 − 1/32. */
export const PACE_MEMORY = 32;
/**
 * One observation counts at most this many times the pace known before it (a late release, found by
 * the sweep after 10 minutes, must not stretch the estimate for the next hour).
 */
export const PACE_OUTLIER = 4;

/** The ms between two slots freed on an account by its pace, or undefined before any was observed. */
export const paceIntervalMs = (pace: AccountPace | undefined): number | undefined =>
  pace && pace.freed > 0 ? pace.overMs / pace.freed : undefined;

/**
 * The pace after one dispatcher run on an account (pure; {@link planGrants} applies it):
 * - **slots freed** since a run saw it full with entries waiting: `freed` slots over the time since
 *   (`now − fullSince`), added to the decayed sums;
 * - **full after the run with entries still waiting:** timed from now on (`fullSince = now`, so the
 *   observations tile the time, and a run's own spacing waits are inside the next one's);
 * - otherwise not timed: an account with a free slot and nothing waiting runs at the pace of the
 *   arrivals, not its own.
 */
export function paceAfter(
  before: AccountPace | undefined,
  run: {
    readonly now: number;
    /** Its slots free at the run's start (depth − held). */
    readonly freed: number;
    /** Whether it is full after the run's grants, and entries still wait. */
    readonly fullWithBacklog: boolean;
  },
): AccountPace | undefined {
  let freed = before?.freed ?? 0;
  let overMs = before?.overMs ?? 0;
  const observed = before?.fullSince !== undefined && run.freed > 0;
  if (observed) {
    const known = paceIntervalMs(before);
    const spanMs = Math.max(0, run.now - (before?.fullSince as number));
    const bounded = known === undefined ? spanMs : Math.min(spanMs, PACE_OUTLIER * known * run.freed);
    const decay = (1 - 1 / PACE_MEMORY) ** run.freed;
    freed = freed * decay + run.freed;
    overMs = overMs * decay + bounded;
  }
  const fullSince = run.fullWithBacklog
    ? observed || before?.fullSince === undefined
      ? run.now
      : before.fullSince
    : undefined;
  if (freed === 0 && fullSince === undefined) return undefined;
  return { freed, overMs, ...(fullSince === undefined ? {} : { fullSince }) };
}

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
  /**
   * The head of each lane, in its fair order: one more than there are free slots (or the whole
   * lane), so the plan knows whether entries still wait after its grants ({@link AccountPace}).
   */
  readonly waiting: Readonly<Record<Lane, readonly QueueEntry[]>>;
  readonly state: DispatcherState;
  readonly rules?: LaneRules;
}

export interface Plan {
  readonly grants: readonly Grant[];
  /**
   * The state after these grants: each account's runner's expected free time after them, each
   * lane's clock moved to the round of its latest grant, and each account's pace
   * ({@link paceAfter}).
   */
  readonly state: DispatcherState;
}

/** Extra spacing between two grants on one account, beyond 1/`submitsPerSecond`, for latency jitter. */
const SUBMIT_SPACING_MARGIN_MS = 100;

/**
 * Which queued generations get a slot now, and on which account. Pure.
 *
 * - **Depth:** an account gets grants only while it holds fewer than `depth` slots.
 * - **Lanes:** interactive first, in each lane's fair order (the heads as given, {@link QueueOrder});
 *   see {@link LaneRules.batchEvery} for batch's share. Each grant moves its lane's clock
 *   ({@link LaneRound}) to the grant's round.
 * - **Accounts:** each grant goes to the account with the earliest expected start: now plus the
 *   expected remaining run of every task it holds (ties: the fewest slots, then the name).
 * - **Submit rate:** grants on one account are at least 1/`submitsPerSecond` (+100 ms) apart,
 *   counting the slots' own grant times.
 * - **Pace:** each account's slots freed since a run saw it full with entries waiting are timed
 *   ({@link paceAfter}); the runners' free times it returns count each run at that pace once known.
 */
export function planGrants(input: PlanInput): Plan {
  const rules = input.rules ?? DEFAULT_LANE_RULES;
  const accounts = input.accounts.map((limits) => {
    const held = input.slots.filter((slot) => slot.account === limits.name);
    return {
      limits,
      held: held.length,
      heldAtStart: held.length,
      busyUntil: input.now + held.reduce((total, slot) => total + remainingMs(slot, input.now), 0),
      lastGrantAt: Math.max(Number.NEGATIVE_INFINITY, ...held.map((slot) => slot.grantedAt)),
      /** Its runs: the slots held (started or not), then its new grants (not started). */
      runs: held.map((slot): { startedAt?: number } => ({ startedAt: slot.startedAt })),
    };
  });
  const heads = { interactive: [...input.waiting.interactive], batch: [...input.waiting.batch] };
  let streak = input.state.interactiveStreak;
  const rounds: Partial<Record<Lane, LaneRound>> = { ...input.state.rounds };
  const grants: Grant[] = [];
  for (;;) {
    const free = accounts.filter((account) => account.held < account.limits.depth);
    if (free.length === 0) break;
    const lane = nextLane(heads, streak, rules);
    if (!lane) break;
    const entry = heads[lane].shift() as QueueEntry;
    if (lane === 'interactive' && heads.batch.length > 0) streak += 1;
    else streak = 0;
    if (entry.order) rounds[lane] = roundAfter(rounds[lane] ?? FIRST_ROUND, entry.order);
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
    account.runs.push({});
  }
  // Entries still waiting after the grants: the heads hold one more than the free slots.
  const backlog = heads.interactive.length + heads.batch.length > 0;
  const pace: Record<string, AccountPace> = {};
  for (const account of accounts) {
    const name = account.limits.name;
    const after = paceAfter(input.state.pace?.[name], {
      now: input.now,
      freed: Math.max(0, account.limits.depth - account.heldAtStart),
      fullWithBacklog: backlog && account.held >= account.limits.depth,
    });
    if (after) pace[name] = after;
  }
  // When each runner is free: the rest of its slots and its new grants, each at the account's
  // observed pace once known (the run-time model's estimate before).
  const runnersFreeAt = Object.fromEntries(
    accounts.map((account) => {
      const intervalMs = paceIntervalMs(pace[account.limits.name]);
      const busy =
        intervalMs === undefined
          ? account.busyUntil
          : account.runs.reduce(
              (total, run) =>
                total +
                (run.startedAt === undefined
                  ? intervalMs
                  : Math.max(0, run.startedAt + intervalMs - input.now)),
              input.now,
            );
      return [account.limits.name, busy];
    }),
  );
  const moved = Object.keys(rounds).length > 0 ? { rounds } : {};
  const paced = Object.keys(pace).length > 0 ? { pace } : {};
  return { grants, state: { interactiveStreak: streak, ...moved, runnersFreeAt, ...paced } };
}

/**
 * A lane's clock after a grant of an entry at `order`: moved forward to its round (never back: an
 * entry that waits again keeps its earlier round), counting the batch lines of each round.
 */
export function roundAfter(round: LaneRound, order: QueueOrder): LaneRound {
  const line = order.solo === undefined ? 1 : 0;
  if (order.round > round.clock) return { clock: order.round, width: round.lines, lines: line };
  const lines = round.lines + line;
  return { clock: round.clock, width: Math.max(round.width, lines), lines };
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
  const runMs = input.typicalRunSeconds * 1000;
  return startAfter(
    free,
    input.ahead,
    free.map(() => runMs),
    input.now,
    runMs,
  ).startMs;
}

/**
 * {@link estimateStartMs} from when each account's runner is expected free (the dispatcher's
 * {@link DispatcherState.runnersFreeAt}, as of its last grant) instead of the slots themselves, so
 * the API reads no slot. An account it does not name, or whose time has passed, is free now.
 *
 * Each run ahead takes its account's observed pace when the dispatcher has one
 * ({@link DispatcherState.pace}: what really limits the rate), else `typicalRunSeconds`; never less
 * than the account's submit spacing ({@link runIntervalMs}).
 */
export function estimateStartFromRunners(input: {
  readonly now: number;
  readonly accounts: readonly AccountLimits[];
  readonly runnersFreeAt?: Readonly<Record<string, number>>;
  readonly pace?: Readonly<Record<string, AccountPace>>;
  readonly ahead: number;
  readonly typicalRunSeconds: number;
}): number {
  return startFromRunners(input).startMs;
}

/**
 * {@link estimateStartFromRunners}, with the run interval of the runner that takes that start
 * (what the run itself is expected to take: a batch's last line ends one interval later).
 */
export function startFromRunners(input: Parameters<typeof estimateStartFromRunners>[0]): {
  readonly startMs: number;
  readonly runMs: number;
} {
  const free = input.accounts.map((account) =>
    Math.max(input.now, input.runnersFreeAt?.[account.name] ?? input.now),
  );
  const runMs = input.accounts.map((account) =>
    runIntervalMs(account, input.pace?.[account.name], input.typicalRunSeconds),
  );
  return startAfter(free, input.ahead, runMs, input.now, input.typicalRunSeconds * 1000);
}

/**
 * The ms one grant's run takes on `account`, as the start estimates count it: its observed pace
 * ({@link AccountPace}) once the dispatcher saw it full with entries waiting, else the run-time
 * model's `typicalRunSeconds`; at least its submit spacing (1/`submitsPerSecond` + 100 ms), the
 * fastest grants can go out.
 */
export function runIntervalMs(
  account: AccountLimits,
  pace: AccountPace | undefined,
  typicalRunSeconds: number,
): number {
  const spacingMs = 1000 / account.submitsPerSecond + SUBMIT_SPACING_MARGIN_MS;
  return Math.max(spacingMs, paceIntervalMs(pace) ?? typicalRunSeconds * 1000);
}

/**
 * When the run after `ahead` others starts, each run on runner `i` `runMs[i]` long, going to the
 * runner free first: the (`ahead` + 1)-th smallest of every runner's free times
 * `free[i] + j × runMs[i]` (j ≥ 0), with the run time of the runner it falls to. Found by a binary
 * search per runner, so it costs the same at any queue length.
 */
function startAfter(
  free: readonly number[],
  ahead: number,
  runMs: readonly number[],
  now: number,
  noRunnerMs: number,
): { startMs: number; runMs: number } {
  if (free.length === 0) return { startMs: now, runMs: noRunnerMs };
  const runOf = (i: number) => runMs[i] ?? noRunnerMs;
  // Starts at or before `t`, over every runner (a hair of slack for the float division).
  const startsBy = (t: number) =>
    free.reduce(
      (total, f, i) => (t < f ? total : total + Math.floor((t - f) / Math.max(1e-9, runOf(i)) + 1e-9) + 1),
      0,
    );
  let best = { startMs: Number.POSITIVE_INFINITY, runMs: noRunnerMs };
  free.forEach((f, i) => {
    const run = runOf(i);
    let low = 0;
    let high = run > 0 ? Math.max(0, ahead) : 0;
    while (low < high) {
      const mid = Math.floor((low + high) / 2);
      if (startsBy(f + mid * run) >= ahead + 1) high = mid;
      else low = mid + 1;
    }
    const at = f + low * run;
    if (at < best.startMs) best = { startMs: at, runMs: run };
  });
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
      /**
       * Its place in its lane, numbered as the lane's counters number them: {@link aheadIn} gives
       * the entries ahead of it. Set by {@link AdmissionQueue.standing}, which reads the counters
       * with it, from {@link entriesAhead}; absent from `get`, and on an entry older than the counters.
       */
      readonly seq?: number;
    })
  | (WaitingEntry & Slot & { readonly kind: 'granted' });

/**
 * A lane's counters, kept on the dispatcher's state item so that a position costs one read at
 * any queue length (docs/admission.md, "Seeing the queue"). They count, they do not order:
 * - `tail`: the entries that came into the lane (Admit takes the next number: one atomic add
 *   per new entry, which also brings back the lane's clock for its round);
 * - `head`: one more than the entries that left it: granted, or released while they waited
 *   (a slot that waits again, given back unused, counts as not having left);
 * - `soloTail`, `soloHead`: the same, of the entries outside any batch, which are served first
 *   come, first served among themselves.
 *
 * A lane holds `tail − head + 1` ({@link waitingIn}), exactly, but for a count whose write failed
 * after the write it follows (documented in admission.md).
 */
export interface LaneCounters {
  readonly tail: number;
  readonly head: number;
  readonly soloTail: number;
  readonly soloHead: number;
  /**
   * The expected runs (Admit's estimates, ms) of the entries waiting, summed the same way: added
   * as each comes, taken off as each leaves. What a run ahead takes before any pace was observed
   * ({@link meanRunSeconds}). Absent from a lane counted before it.
   */
  readonly runMs?: number;
}
/** A lane that never had an entry. */
export const EMPTY_LANE: LaneCounters = { tail: 0, head: 1, soloTail: 0, soloHead: 1 };

/** Entries waiting in a lane, by its counters ({@link LaneCounters} says how exact). */
export const waitingIn = (lane: LaneCounters): number => Math.max(0, lane.tail - lane.head + 1);

/** An expected run as the lanes' counters sum it ({@link LaneCounters.runMs}): whole ms. */
export const runMsOf = (seconds: number): number => Math.max(0, Math.round(seconds * 1000));

/**
 * The mean expected run, seconds, of the entries waiting in every lane that sums them
 * ({@link LaneCounters.runMs}); undefined when none waits there. The runs ahead of a place are
 * theirs, not the place's own.
 */
export function meanRunSeconds(lanes: Readonly<Record<Lane, LaneCounters>>): number | undefined {
  let runMs = 0;
  let waiting = 0;
  for (const lane of LANES) {
    const counters = lanes[lane];
    if (counters.runMs === undefined || waitingIn(counters) === 0) continue;
    runMs += Math.max(0, counters.runMs);
    waiting += waitingIn(counters);
  }
  return waiting > 0 && runMs > 0 ? runMs / waiting / 1000 : undefined;
}

/** Entries outside any batch waiting in a lane. */
export const singlesIn = (lane: LaneCounters): number => Math.max(0, lane.soloTail - lane.soloHead + 1);

/**
 * Entries of its lane ahead of a waiting record whose place is `seq` (its `seq` as
 * {@link AdmissionQueue.standing} read it with the counters): at most all the others. A record
 * without one is at the head.
 */
export const aheadIn = (lane: LaneCounters, seq: number | undefined): number =>
  seq === undefined ? 0 : Math.min(Math.max(0, seq - lane.head), Math.max(0, waitingIn(lane) - 1));

/**
 * About how many entries of its lane go before one at `order`, from the lane's counters and
 * clock alone (so a position costs the same at any queue length). Exact for a generation outside
 * any batch in a lane without batches; an estimate otherwise (docs/admission.md, "How exact it is"):
 * - **outside any batch:** the singles that came before it (first come, first served among
 *   themselves), and the batch lines of the rounds up to its own, `width` a round;
 * - **a batch line:** every single (they are in the next round at the latest), and the rounds
 *   between the clock and its own, each `width` lines wide (at least its own batch's one).
 *
 * Never more than the others waiting. An entry older than the fair order is counted at the head.
 */
export function entriesAhead(
  order: QueueOrder | undefined,
  lane: LaneCounters,
  round: LaneRound = FIRST_ROUND,
): number {
  if (!order) return 0;
  const ahead =
    order.solo !== undefined
      ? Math.max(0, order.solo - lane.soloHead) + round.width * Math.max(0, order.round - round.clock)
      : (order.round > round.clock ? singlesIn(lane) : 0) +
        Math.max(1, round.width) * Math.max(0, order.round - round.clock - 1);
  return Math.min(ahead, Math.max(0, waitingIn(lane) - 1));
}

/**
 * Where a generation that is not in the queue yet would stand once Admit puts it there: at the
 * end of the singles of its lane, or, a line of a batch (`line`), that many rounds after the clock.
 */
export function entriesAheadOfNew(lane: LaneCounters, round: LaneRound = FIRST_ROUND, line?: number): number {
  const after = {
    ...lane,
    tail: lane.tail + 1,
    ...(line === undefined ? { soloTail: lane.soloTail + 1 } : {}),
  };
  const order = {
    round: roundOf(round.clock, line),
    arrival: after.tail,
    ...(line === undefined ? { solo: after.soloTail } : {}),
  };
  return entriesAhead(order, after, round);
}

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
   * - **absent:** created, only if still absent, with its place in the fair order
   *   ({@link QueueOrder}): its lane's next numbers and clock come from one atomic add on the
   *   counters' item ({@link LaneCounters}), taken before the create; a create that loses a race
   *   counts its numbers as having left;
   * - **present, another token** (Admit retried, or its execution redriven after its process
   *   died): keeps its first place (`enqueuedAt` and its order) and takes the new token; a granted
   *   one whose execution never attempted a submit gives its slot back and waits again, at its
   *   first place (its round is behind the lane's clock, so it goes first), counted again;
   * - **present, the same token**, or a slot whose execution attempted a submit already (that
   *   Admit is stale: its execution went past Admit): left as it is.
   */
  enqueue(entry: WaitingEntry): Promise<void>;
  /** The first `limit` entries of a lane, in its fair order ({@link compareInLane}), each with its order. */
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
   * since it was read: the grant is the new token's, on a later run). Counts the entry as having
   * left its lane (one write more, on the counters' item).
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
   * waiting entry is counted as having left its lane (a write more, on the counters' item).
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
  /** `byQueue`'s sort key: `r`, the round, `#`, `enqueuedAt` (both zero-padded) `#` id ({@link compareInLane}). */
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
