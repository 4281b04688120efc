import type { RunEstimate } from './run-time-estimate.js';
import type { GenerationStatus } from './workflow-state.js';

/**
 * The adaptive poll policy: when to look at a DashScope task again.
 *
 * DashScope runs one SD task at a time per account, first in first out, and allows 20 task
 * queries per second for the whole account. A task's end is therefore predictable: it starts when
 * the tasks ahead of it are done, and then runs for about its expected run time. The policy turns
 * what the last poll learnt into a distribution of the time left until the task ends, and waits
 * until just past that distribution's low end:
 *
 *     wait = ⌊LAG_TOLERANCE + q⌋,   q = a low quantile of the seconds left until the end
 *
 * so the task ends more than {@link LAG_TOLERANCE_SECONDS} before the next poll with a small,
 * chosen probability per wait ({@link EPSILON} for its own run, {@link QUEUE_EPSILON} for the
 * queue ahead). Far from the end, waits are long (one poll can cover many minutes of queue); near
 * it, the quantile falls under a second and the policy polls every second, the Wait state's floor.
 *
 * - **RUNNING:** the run time is log-normal around the estimate (σ = its `spread`), truncated
 *   below by the time already run (it is still running) and, for n > 1, bracketed by
 *   `task_metrics`: k of n images done after e seconds puts the run between
 *   overhead + n·(e − overhead)/(k + 1) and overhead + n·(e − overhead)/k. A task that has outrun
 *   everything the estimate allows is polled every {@link OVERRUN_FRACTION} of its age instead.
 * - **PENDING:** what a reader sees change next is the task's start (`queued` → `running`), so
 *   the next look aims at that, not at its end: a low quantile of the time the tasks ahead of it
 *   take. The queue ahead comes from the list endpoint (PENDING SD tasks of the account submitted
 *   earlier). Its drain rate is measured between the first and the latest listing, so the
 *   estimate of the others' run times is replaced by what the runner really did; until then a
 *   default task's estimate stands in, with a wide spread. With nothing ahead, or without any
 *   listing, the task may start at once (admission grants a slot only when the account has a free
 *   one): the next look is 1 s away, and without a listing, the longer it has waited, the slower
 *   it polls. (Until #24 the wait added the low end of its own run and aimed at its end, so the
 *   index showed a task that had started at once `queued` for most of its run.)
 * - **Seen starting:** a Poll invocation that sees the task start returns at once (see
 *   {@link STARTED_STAY_SECONDS}), so the index, written when it returns, shows it running.
 * - **Jitter** shortens long waits by up to {@link JITTER_FRACTION}, never lengthens them, so
 *   executions started together drift apart without polling later than planned.
 * - **The deadline** caps every wait, so the poll that sees it comes on time.
 * - **Tail polling** ({@link tailPollMs}): a Wait state sleeps whole seconds, and each loop costs
 *   3 state transitions (as much as ~45 s of a 128 MB Lambda). So within one Poll invocation,
 *   when the same low quantile says the task may end within what is left of
 *   {@link TAIL_BUDGET_SECONDS}, the Lambda sleeps that long itself and queries again, at most
 *   every {@link TAIL_INTERVAL_MS}: near the predicted end it queries every few hundred ms, and a
 *   task that ends there is seen a fraction of a second late instead of up to a loop late.
 *
 * Every function here is pure: same input, same answer. The Wait state needs an integer ≥ 1.
 */

/** Progress counters, as `task_metrics` reports them. */
export interface PollProgress {
  readonly total: number;
  readonly succeeded: number;
  readonly failed: number;
}

/** What the list endpoint showed about the queue ahead. */
export interface QueueView {
  /** PENDING Stable Diffusion tasks of the account, submitted before this one. */
  readonly ahead: number;
  /** Seconds since that listing. */
  readonly secondsAgo: number;
  /** How many tasks left the queue ahead between the first listing and that one, over how long. */
  readonly drained?: { readonly tasks: number; readonly seconds: number };
}

export interface PollPolicyInput {
  readonly status: Extract<GenerationStatus, 'queued' | 'running'>;
  /** Polls made so far (0 right after submit). */
  readonly pollCount: number;
  /** Seconds left before the generation's deadline. */
  readonly secondsUntilDeadline: number;
  /** The task's expected run (from the run-time model at submit). */
  readonly expected: RunEstimate;
  /** Seconds since the task was submitted. @default 0 */
  readonly secondsSinceSubmit?: number;
  /** Seconds the task has been RUNNING (now − `scheduled_time`), when it is. @default 0 */
  readonly runningForSeconds?: number;
  readonly progress?: PollProgress;
  /** The queue ahead, when the list endpoint has been read. */
  readonly queue?: QueueView;
  /** A number in [0, 1) that differs between executions (see {@link pollJitter}). @default 0 */
  readonly jitter?: number;
}

/** What decides whether a poll also reads the queue from the list endpoint. */
export interface QueueListInput {
  /** DashScope answered PENDING (not SUSPENDED, not RUNNING). */
  readonly pending: boolean;
  /** The queue ahead at the last successful listing, if any. */
  readonly ahead?: number;
  /** Seconds since this execution last called the list endpoint, successfully or not. */
  readonly secondsSinceLastList?: number;
}

/** What the policy sees after a query made inside a Poll invocation. */
export interface TailPollInput extends PollPolicyInput {
  /** Seconds since this invocation's first query was sent. */
  readonly invocationSeconds: number;
  /**
   * The status differs from the one the invocation started with: the task was seen starting (the
   * index, written when the invocation returns, still shows it queued). @default false
   */
  readonly statusChanged?: boolean;
}

/** A poll policy: the adaptive one below, or the baselines the benchmark compares it with. */
export interface PollPolicy {
  readonly name: string;
  /** Seconds the Wait state sleeps before the next poll: an integer ≥ 1. */
  nextPollSeconds(input: PollPolicyInput): number;
  /** Whether this poll should also read the queue ahead from the list endpoint. */
  shouldListQueue(input: QueueListInput): boolean;
  /**
   * Milliseconds the Poll invocation sleeps before it queries the task again itself, or undefined
   * to return to the Wait state. Absent: one query per invocation.
   */
  tailPollMs?(input: TailPollInput): number | undefined;
}

/**
 * Probability, per wait, that a task ends more than the lag tolerance before the next poll, as far
 * as its own run goes: a miss costs at most a few seconds of lag.
 */
export const EPSILON = 0.05;
/**
 * The same for the queue ahead: a miss there can cost the whole error of a long queue's estimate,
 * so the policy is more careful.
 */
export const QUEUE_EPSILON = 0.15;
/** Φ⁻¹ of the queue's: how many σ below the median that quantile lies. */
const Z_QUEUE_EPSILON = normalQuantile(QUEUE_EPSILON);
/**
 * The lag the policy accepts before its next poll, in seconds: none, since the Poll that lands
 * before the end keeps querying until it (tail polling). It was 1 s before tail polling.
 */
export const LAG_TOLERANCE_SECONDS = 0;
/** Longest single wait: a wrong estimate is found out within this time. */
export const MAX_WAIT_SECONDS = 600;
/** Long waits are shortened by up to this fraction, by the execution's jitter. */
export const JITTER_FRACTION = 0.1;
/** Spread (σ of ln) of other tasks' run times around the per-task time the policy uses for them. */
export const OTHERS_SPREAD = 1.0;
/**
 * Until the queue's drain has been measured, the per-task time assumed for the tasks ahead (whose
 * shapes the list endpoint does not show): the default request's estimate (one 1024*1024 image,
 * 40 steps), with a wide spread.
 */
export const UNMEASURED_TASK_SECONDS = 20;
export const UNMEASURED_QUEUE_SPREAD = 0.8;
/** A run that has outlived all but this share of its estimated distribution has outrun the estimate. */
export const OVERRUN_TAIL = 0.02;
/** Past the estimate, poll every this fraction of the run's age. */
export const OVERRUN_FRACTION = 0.1;
/** Without any queue reading, poll at least every this fraction of the time spent waiting. */
export const UNLISTED_FRACTION = 0.25;
/** An execution reads the list endpoint at most once per this many seconds. */
export const MIN_LIST_INTERVAL_SECONDS = 5;
/**
 * Longest a Poll invocation keeps querying on its own, in seconds. Staying costs Lambda time; a
 * loop costs 3 transitions ($0.000075), the price of ~22 s of a 256 MB arm64 Lambda or ~45 s of a
 * 128 MB one. 20 s stays below one loop at either size, and one invocation (with its last query's
 * timeout) fits well inside the Poll function's timeout, which infra derives from this.
 */
export const TAIL_BUDGET_SECONDS = 30;
/**
 * Shortest sleep between two queries of one invocation. With a query's ~0.1 s round trip, a task
 * that ends while the invocation polls at this pace is seen at most ~0.4 s late; one tail poller
 * makes under 3 queries/s, a small share of the account's 20.
 */
export const TAIL_INTERVAL_MS = 300;
/**
 * Shortest sleep between two queries of a queued task within one invocation. Its start changes
 * only the status a reader sees (the run, and the end whose lag matters, come after it), so a
 * second late is close enough, at a third of the queries of {@link TAIL_INTERVAL_MS}.
 */
export const QUEUED_TAIL_INTERVAL_MS = 1000;
/**
 * A task seen starting within an invocation is kept watched there only if it will most likely
 * (1 − {@link EPSILON}) end within this many seconds: sooner than a Wait state (1 s at least, plus
 * its transitions and an invoke) could bring the next poll. Otherwise the invocation returns at
 * once, so the index shows the task running within the poll that saw it start.
 */
export const STARTED_STAY_SECONDS = 2;
/**
 * Within an invocation, the chance per sleep that a RUNNING task ends during it: lower than
 * {@link EPSILON}, because a sleep there is cheap and the lag it risks is what tail polling is for.
 */
export const TAIL_EPSILON = 0.01;

/**
 * Seconds to wait before the next poll (see the module comment). Always an integer ≥ 1 and never
 * more than the time left before the deadline, rounded up.
 */
export function nextPollSeconds(input: PollPolicyInput): number {
  const untilDeadline = Number.isFinite(input.secondsUntilDeadline)
    ? Math.ceil(input.secondsUntilDeadline)
    : 0;
  const left = input.status === 'running' ? runningSecondsLeft(input) : queuedSecondsLeft(input);
  const wanted = Number.isFinite(left) ? Math.floor(LAG_TOLERANCE_SECONDS + Math.max(0, left)) : 1;
  const jitter = Math.min(Math.max(input.jitter ?? 0, 0), 1);
  const jittered = wanted - Math.floor(wanted * JITTER_FRACTION * jitter);
  return Math.max(1, Math.min(jittered, MAX_WAIT_SECONDS, untilDeadline));
}

/**
 * Whether this poll should read the queue ahead: only while PENDING, at most once per
 * {@link MIN_LIST_INTERVAL_SECONDS} (failed attempts included), and never again once nothing is
 * ahead (first in, first out: nothing can get ahead later).
 */
export function shouldListQueue(input: QueueListInput): boolean {
  if (!input.pending || input.ahead === 0) return false;
  return input.secondsSinceLastList === undefined || input.secondsSinceLastList >= MIN_LIST_INTERVAL_SECONDS;
}

/**
 * Within one Poll invocation, after a query that found the task still queued or running: the
 * milliseconds to sleep before querying again, or undefined to return to the Wait state. The sleep
 * is the same low quantile of the time left that {@link nextPollSeconds} uses, but unrounded and
 * without the lag tolerance, and at least {@link TAIL_INTERVAL_MS}. The invocation returns when that
 * sleep would take it past {@link TAIL_BUDGET_SECONDS} or past the deadline.
 */
export function tailPollMs(input: TailPollInput): number | undefined {
  const budgetLeft = TAIL_BUDGET_SECONDS - Math.max(0, input.invocationSeconds);
  const untilDeadline = Number.isFinite(input.secondsUntilDeadline) ? input.secondsUntilDeadline : 0;
  let soonest: number;
  let interval = TAIL_INTERVAL_MS;
  if (input.status === 'running') {
    const latest = runningLeftQuantile(input, 1 - EPSILON);
    // Just seen starting: return, so the index shows it running now, unless it ends sooner than a
    // Wait could come back.
    if (input.statusChanged && (latest === undefined || latest > STARTED_STAY_SECONDS)) return undefined;
    // Stay only if the task will most likely end before this invocation must return: otherwise a
    // Wait state bridges the time for free, and a fresh invocation brings a whole budget.
    if (latest !== undefined && latest > budgetLeft) return undefined;
    // Past every estimate the task may end at any moment: poll at the tail interval.
    soonest = runningLeftQuantile(input, TAIL_EPSILON) ?? 0;
  } else {
    soonest = queuedSecondsLeft(input);
    interval = QUEUED_TAIL_INTERVAL_MS;
  }
  const sleepMs = Math.max(interval, Math.round(Math.max(0, soonest) * 1000));
  return sleepMs <= budgetLeft * 1000 && sleepMs < untilDeadline * 1000 ? sleepMs : undefined;
}

/** The policy the workflow uses. */
export const adaptivePollPolicy: PollPolicy = {
  name: 'adaptive',
  nextPollSeconds,
  shouldListQueue,
  tailPollMs,
};

/** A number in [0, 1) from a key (FNV-1a), so that each execution's jitter is its own but repeatable. */
export function pollJitter(key: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) / 2 ** 32;
}

/** The EPSILON-quantile of the seconds left in a RUNNING task; past the estimate, a share of its age. */
function runningSecondsLeft(input: PollPolicyInput): number {
  return runningLeftQuantile(input, EPSILON) ?? OVERRUN_FRACTION * Math.max(0, input.runningForSeconds ?? 0);
}

/**
 * The `p`-quantile of the seconds left in a RUNNING task, or undefined once the run has outlived
 * what its estimate allows (see {@link OVERRUN_TAIL}).
 */
function runningLeftQuantile(input: PollPolicyInput, p: number): number | undefined {
  const { seconds, overheadSeconds, spread } = input.expected;
  const elapsed = Math.max(0, input.runningForSeconds ?? 0);
  let low = elapsed;
  let high = Number.POSITIVE_INFINITY;
  const progress = input.progress;
  if (progress && progress.total >= 2 && elapsed > overheadSeconds) {
    // Images finish one after another: k done and k + 1 not yet brackets the time per image.
    const done = Math.min(progress.succeeded + progress.failed, progress.total - 1);
    const imageTime = elapsed - overheadSeconds;
    low = Math.max(low, overheadSeconds + (progress.total * imageTime) / (done + 1));
    if (done >= 1) high = overheadSeconds + (progress.total * imageTime) / done;
  }
  const end = truncatedLogNormalQuantile(seconds, spread, low, high, p);
  return end === undefined ? undefined : end - elapsed;
}

/**
 * A low quantile of the seconds until a PENDING task starts: what a reader sees change next is
 * its start (queued → running), so that is what the next look aims at, not its end. Nothing ahead
 * (admission grants a slot only when the account has a free one): it may start at once. Without a
 * listing, the longer it has waited, the slower it is looked at.
 */
function queuedSecondsLeft(input: PollPolicyInput): number {
  const queue = input.queue;
  if (!queue) return UNLISTED_FRACTION * Math.max(0, input.secondsSinceSubmit ?? 0);
  const untilStart = queue.ahead > 0 ? queueDelayQuantile(queue) - Math.max(0, queue.secondsAgo) : 0;
  return Math.max(0, untilStart);
}

/**
 * The QUEUE_EPSILON-quantile of the time the `ahead` tasks take: `ahead` runs of a per-task time that is
 * the measured drain rate when there is one (its error shrinking with the tasks measured), else
 * {@link UNMEASURED_TASK_SECONDS} with a wide spread; each task's own variation averages out over
 * the queue.
 */
function queueDelayQuantile(queue: QueueView): number {
  const drained = queue.drained;
  const measured = drained !== undefined && drained.tasks >= 1 && drained.seconds > 0;
  const perTask = measured ? drained.seconds / drained.tasks : UNMEASURED_TASK_SECONDS;
  const rateSpread = measured ? OTHERS_SPREAD / Math.sqrt(drained.tasks) : UNMEASURED_QUEUE_SPREAD;
  const sigma = Math.sqrt(rateSpread ** 2 + OTHERS_SPREAD ** 2 / queue.ahead);
  return queue.ahead * perTask * Math.exp(Z_QUEUE_EPSILON * sigma);
}

/**
 * The `p`-quantile of a log-normal (median `median`, σ `sigma`) restricted to (`low`, `high`];
 * undefined when less than {@link OVERRUN_TAIL} of it lies above `low`: the estimate no longer
 * explains the run.
 */
function truncatedLogNormalQuantile(
  median: number,
  sigma: number,
  low: number,
  high: number,
  p: number,
): number | undefined {
  const cdf = (x: number) => (x <= 0 ? 0 : normalCdf(Math.log(x / median) / sigma));
  const pLow = cdf(low);
  if (1 - pLow < OVERRUN_TAIL) return undefined;
  const pHighRaw = Number.isFinite(high) ? cdf(high) : 1;
  const pHigh = pHighRaw > pLow ? pHighRaw : 1;
  return median * Math.exp(sigma * normalQuantile(pLow + p * (pHigh - pLow)));
}

/** Φ, the standard normal CDF (Numerical Recipes' erfc, relative error below 1.2e-7). */
export function normalCdf(x: number): number {
  const z = Math.abs(x) / Math.SQRT2;
  const t = 1 / (1 + 0.5 * z);
  const poly =
    -1.26551223 +
    t *
      (1.00002368 +
        t *
          (0.37409196 +
            t *
              (0.09678418 +
                t *
                  (-0.18628806 +
                    t *
                      (0.27886807 +
                        t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
  const erfc = t * Math.exp(-z * z + poly);
  return x >= 0 ? 1 - erfc / 2 : erfc / 2;
}

/** Φ⁻¹, the standard normal quantile (Acklam's algorithm, relative error below 1.2e-9). */
export function normalQuantile(p: number): number {
  if (!(p > 0)) return Number.NEGATIVE_INFINITY;
  if (!(p < 1)) return Number.POSITIVE_INFINITY;
  const low = 0.02425;
  if (p < low || p > 1 - low) {
    const q = Math.sqrt(-2 * Math.log(p < low ? p : 1 - p));
    const x =
      (((((-7.784894002430293e-3 * q - 3.223964580411365e-1) * q - 2.400758277161838) * q -
        2.549732539343734) *
        q +
        4.374664141464968) *
        q +
        2.938163982698783) /
      ((((7.784695709041462e-3 * q + 3.224671290700398e-1) * q + 2.445134137142996) * q + 3.754408661907416) *
        q +
        1);
    return p < low ? x : -x;
  }
  const q = p - 0.5;
  const r = q * q;
  return (
    ((((((-3.969683028665376e1 * r + 2.209460984245205e2) * r - 2.759285104469687e2) * r +
      1.38357751867269e2) *
      r -
      3.066479806614716e1) *
      r +
      2.506628277459239) *
      q) /
    (((((-5.447609879822406e1 * r + 1.615858368580409e2) * r - 1.556989798598866e2) * r +
      6.680131188771972e1) *
      r -
      1.328068155288572e1) *
      r +
      1)
  );
}
