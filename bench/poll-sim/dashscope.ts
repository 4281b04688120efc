import type { ListTasksQuery } from '../../functions/shared/dashscope/client.js';
import type {
  ListTasksResponse,
  SubmitResponse,
  TaskResponse,
} from '../../functions/shared/dashscope/schemas.js';
import { DashScopeThrottledError } from '../../functions/shared/errors.js';
import type { GenerationRequest } from '../../functions/shared/generation-request.js';
import { DEFAULT_RUN_TIME_MODEL, megapixels } from '../../functions/shared/run-time-estimate.js';
import { formatCstTime, parseCompactCstTime } from '../../local/dashscope-emulator/cst-time.js';
import type { Random } from '../lib/random.js';

/**
 * The documented DashScope account, as the simulation's ground truth: one runner, tasks first in
 * first out, 2 submits per second, 20 task-API calls (query, list, cancel) per second for the
 * whole account, each refused with 429 `Throttling.RateQuota` beyond that.
 *
 * Run times are **not** the policy's estimate: the truth is the same formula with different
 * constants and per-task noise, so the policy is never tested against its own model:
 *
 *     actual = (overhead + n × steps × megapixels × rate × bias[model]) × exp(noise × Z)
 *
 * with Z standard normal and `rate` the estimate's. Images finish evenly spaced after the overhead
 * (what `task_metrics` shows).
 */
export interface Truth {
  /** How much slower (> 1) or faster (< 1) than estimated each model really runs. */
  readonly bias: Readonly<Record<string, number>>;
  readonly overheadSeconds: number;
  /** σ of a task's log-normal variation from one run to the next. */
  readonly noise: number;
}

/**
 * The default truth: the estimate is 10 % fast for large and 15 % slow for turbo, assumes 1 s of
 * overhead where the truth has 0.6 s, and a task varies by about 10 % from one run to the next.
 */
export const DEFAULT_TRUTH: Truth = {
  bias: { 'stable-diffusion-3.5-large': 1.1, 'stable-diffusion-3.5-large-turbo': 0.85 },
  overheadSeconds: 0.6,
  noise: 0.1,
};

/** One account's documented limits, per second: submits, and task-API calls (query, list, cancel). */
export interface AccountRateLimits {
  readonly submitsPerSecond: number;
  readonly queriesPerSecond: number;
}

/** DashScope's documented limits for one account. */
export const DOCUMENTED_LIMITS: AccountRateLimits = { submitsPerSecond: 2, queriesPerSecond: 20 };

/** One task at the simulated DashScope. */
export interface SimTask {
  readonly taskId: string;
  readonly model: string;
  readonly n: number;
  readonly createdMs: number;
  readonly startMs: number;
  readonly endMs: number;
  readonly overheadMs: number;
}

/** Draws the true run time of a request, in ms. */
export function drawRunMs(request: GenerationRequest, random: Random, truth: Truth = DEFAULT_TRUTH): number {
  const rate = DEFAULT_RUN_TIME_MODEL.secondsPerMegapixelStep[request.model];
  const work = request.n * request.steps * megapixels(request.size) * rate * (truth.bias[request.model] ?? 1);
  return (truth.overheadSeconds + work) * Math.exp(truth.noise * random.normal()) * 1000;
}

/** Counts calls in a sliding 1-second window, exactly, even when told of them slightly out of order. */
export class WindowCounter {
  readonly #limit: number;
  #stamps: number[] = [];

  constructor(limit: number) {
    this.#limit = limit;
  }

  /** Records a call at `ms` unless `limit` calls already fall in (ms − 1000, ms]. */
  tryAcquire(ms: number): boolean {
    const inWindow = this.#countIn(ms - 1000, ms);
    if (inWindow >= this.#limit) return false;
    this.#stamps.splice(this.#upperBound(ms), 0, ms);
    if (this.#stamps.length > 4096) this.#stamps = this.#stamps.filter((stamp) => stamp > ms - 10_000);
    return true;
  }

  #countIn(fromExclusive: number, toInclusive: number): number {
    return this.#upperBound(toInclusive) - this.#upperBound(fromExclusive);
  }

  /** Index of the first stamp greater than `ms`. */
  #upperBound(ms: number): number {
    let low = 0;
    let high = this.#stamps.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if ((this.#stamps[mid] ?? 0) <= ms) low = mid + 1;
      else high = mid;
    }
    return low;
  }
}

/** The simulated account: its tasks, its single runner and its rate limits. */
export class SimAccount {
  readonly tasks: SimTask[] = [];
  /** Every task-API call attempted (accepted or refused), in ms: the demand on the queries budget. */
  readonly queryAttempts: number[] = [];
  /** Every submit attempted (accepted or refused), in ms: the demand on the submits budget. */
  readonly submitAttempts: number[] = [];
  /** Task-API calls refused with 429. */
  throttled = 0;
  /** Submits refused with 429. */
  submitsThrottled = 0;
  readonly #submits: WindowCounter;
  readonly #queries: WindowCounter;
  readonly #byId = new Map<string, SimTask>();
  #runnerFreeMs = Number.NEGATIVE_INFINITY;

  /**
   * @param truth how tasks really run. @default DEFAULT_TRUTH
   * @param limits the account's rate limits. @default DOCUMENTED_LIMITS
   */
  constructor(
    private readonly truth: Truth = DEFAULT_TRUTH,
    limits: AccountRateLimits = DOCUMENTED_LIMITS,
  ) {
    this.#submits = new WindowCounter(limits.submitsPerSecond);
    this.#queries = new WindowCounter(limits.queriesPerSecond);
  }

  /** A submit arriving at `ms`: a PENDING task behind every earlier one, or a 429. */
  submit(taskId: string, request: GenerationRequest, runMs: number, ms: number): SubmitResponse {
    this.submitAttempts.push(ms);
    if (!this.#submits.tryAcquire(ms)) {
      this.submitsThrottled += 1;
      throw throttled('POST /services/aigc/text2image/image-synthesis');
    }
    const startMs = Math.max(ms, this.#runnerFreeMs);
    const task: SimTask = {
      taskId,
      model: request.model,
      n: request.n,
      createdMs: ms,
      startMs,
      endMs: startMs + runMs,
      overheadMs: Math.min(this.truth.overheadSeconds * 1000, runMs / 2),
    };
    this.#runnerFreeMs = task.endMs;
    this.tasks.push(task);
    this.#byId.set(taskId, task);
    return { request_id: `req-${taskId}`, output: { task_id: taskId, task_status: 'PENDING' } };
  }

  /** The task, for the simulation's own bookkeeping. */
  task(taskId: string): SimTask {
    const task = this.#byId.get(taskId);
    if (!task) throw new Error(`no simulated task ${taskId}`);
    return task;
  }

  /** `GET /tasks/{id}` arriving at `ms`. */
  getTask(taskId: string, ms: number): TaskResponse {
    this.#admit('GET /tasks/{id}', ms);
    const task = this.task(taskId);
    const output: TaskResponse['output'] = {
      task_id: taskId,
      task_status: ms < task.startMs ? 'PENDING' : ms < task.endMs ? 'RUNNING' : 'SUCCEEDED',
      submit_time: formatCstTime(task.createdMs),
    };
    if (ms >= task.startMs) {
      output.scheduled_time = formatCstTime(task.startMs);
      output.task_metrics = { TOTAL: task.n, SUCCEEDED: imagesDone(task, ms), FAILED: 0 };
    }
    if (ms >= task.endMs) {
      output.end_time = formatCstTime(task.endMs);
      output.results = Array.from({ length: task.n }, (_, i) => ({
        url: `https://example.invalid/${i}.png`,
      }));
    }
    return { request_id: `req-${ms}`, output };
  }

  /** `GET /tasks?…` arriving at `ms`: the matching tasks, newest first, one page. */
  listTasks(query: ListTasksQuery, ms: number): ListTasksResponse {
    this.#admit('GET /tasks', ms);
    const from =
      query.startTime === undefined ? Number.NEGATIVE_INFINITY : (parseCompactCstTime(query.startTime) ?? 0);
    const until =
      query.endTime === undefined
        ? ms
        : (parseCompactCstTime(query.endTime) ?? Number.POSITIVE_INFINITY) + 1000;
    const status = (task: SimTask) =>
      ms < task.startMs ? 'PENDING' : ms < task.endMs ? 'RUNNING' : 'SUCCEEDED';
    const matching = this.tasks
      .filter((task) => task.createdMs >= from && task.createdMs < until)
      .filter((task) => query.modelName === undefined || task.model === query.modelName)
      .filter((task) => query.status === undefined || status(task) === query.status)
      .reverse();
    const size = query.pageSize ?? 10;
    const page = matching.slice(((query.pageNo ?? 1) - 1) * size, (query.pageNo ?? 1) * size);
    return {
      request_id: `req-list-${ms}`,
      data: page.map((task) => ({ task_id: task.taskId, status: status(task), model_name: task.model })),
      total: matching.length,
    };
  }

  #admit(what: string, ms: number): void {
    this.queryAttempts.push(ms);
    if (this.#queries.tryAcquire(ms)) return;
    this.throttled += 1;
    throw throttled(what);
  }
}

function imagesDone(task: SimTask, ms: number): number {
  if (ms >= task.endMs) return task.n;
  const perImage = (task.endMs - task.startMs - task.overheadMs) / task.n;
  return Math.min(task.n - 1, Math.max(0, Math.floor((ms - task.startMs - task.overheadMs) / perImage)));
}

function throttled(what: string): DashScopeThrottledError {
  return new DashScopeThrottledError(`${what}: HTTP 429 Throttling.RateQuota`, { httpStatus: 429 });
}

/** The highest number of calls in any sliding 1-second window. */
export function peakPerSecond(stamps: readonly number[]): number {
  const sorted = [...stamps].sort((a, b) => a - b);
  let peak = 0;
  let first = 0;
  for (let last = 0; last < sorted.length; last++) {
    while ((sorted[first] ?? 0) <= (sorted[last] ?? 0) - 1000) first++;
    peak = Math.max(peak, last - first + 1);
  }
  return peak;
}
