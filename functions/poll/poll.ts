import type { Clock, Sleep } from '../shared/clock.js';
import {
  type DashScopeClient,
  formatCompactCstTime,
  parseDashScopeTime,
} from '../shared/dashscope/client.js';
import type { ListTasksResponse, TaskResponse } from '../shared/dashscope/schemas.js';
import { DashScopeRejectedError, describeError, upstreamErrorType } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import {
  adaptivePollPolicy,
  type PollPolicy,
  type PollPolicyInput,
  pollJitter,
} from '../shared/poll-policy.js';
import { estimateRun } from '../shared/run-time-estimate.js';
import {
  normalizeStatus,
  type QueueReading,
  type TaskInput,
  type TaskState,
} from '../shared/workflow-state.js';

export interface PollDeps {
  readonly dashscope: DashScopeClient;
  readonly clock: Clock;
  readonly logger: Logger;
  /** When to poll next and whether to read the queue. @default adaptivePollPolicy */
  readonly policy?: PollPolicy;
  /**
   * Sleeps between the queries of one invocation (tail polling), on the same time as `clock`.
   * @default none: one query per invocation, whatever the policy
   */
  readonly sleep?: Sleep;
}

/** The list endpoint's window may span at most 24 h; ours ends at the task's own submit second. */
const LIST_WINDOW_MS = 24 * 60 * 60 * 1000 - 1000;
/** The most rows one list call returns: the whole queue ahead, unless it is longer than that. */
const LIST_PAGE_SIZE = 100;

/**
 * Queries the task and returns the next task state: normalized status, progress, DashScope's
 * times and the seconds to wait before the next poll. Past the deadline, a task still PENDING is
 * cancelled (a RUNNING one cannot be) and `deadlineExceeded` tells the workflow to fail.
 * While the task is PENDING, the policy may also have the queue ahead read from the list endpoint;
 * that read fails soft: a failed list never fails a poll.
 *
 * With a `sleep` and a policy that tail-polls, the invocation may query again, after the sleep the
 * policy asks for, until the task ends or the policy returns to the Wait state; one invocation
 * counts as one poll (`pollCount`), however many queries it makes. A tail query that fails ends
 * the invocation with the last answer: the next poll asks again.
 * Throws the client's named errors from the first query; the workflow retries the retryable ones.
 */
export async function pollGeneration(input: TaskInput, deps: PollDeps): Promise<TaskState> {
  const policy = deps.policy ?? adaptivePollPolicy;
  const startedAt = deps.clock.now();
  let reading = await queryTask(input, input.task.pollCount + 1, deps, policy);
  let queries = 1;
  let listed = reading.listed;
  const tailPollMs = policy.tailPollMs;
  while (deps.sleep && tailPollMs && isPending(reading.task)) {
    // A task seen starting (queued → running) mostly ends the invocation at once (the policy
    // decides), so that the index, written when it returns, shows it running now rather than
    // after a tail that may last until the task ends.
    const sleepMs = tailPollMs({
      ...tailInput(reading, input, deps.clock.now(), (deps.clock.now() - startedAt) / 1000),
      statusChanged: reading.task.status !== input.task.status,
    });
    if (sleepMs === undefined) break;
    await deps.sleep(sleepMs);
    try {
      reading = await queryTask({ ...input, task: reading.task }, reading.task.pollCount, deps, policy);
      queries += 1;
      listed ||= reading.listed;
    } catch (error) {
      deps.logger.warn('Tail query failed; returning the last answer', {
        generationId: input.id,
        taskId: input.task.taskId,
        reason: describeError(error),
      });
      break;
    }
  }
  const next = reading.task;
  deps.logger.info('DashScope task polled', {
    generationId: input.id,
    taskId: next.taskId,
    dashscopeRequestId: next.lastRequestId,
    status: next.status,
    progress: next.progress,
    pollCount: next.pollCount,
    queries,
    queueAhead: listed ? next.queue?.ahead : undefined,
    nextPollSeconds: isPending(next) ? next.nextPollSeconds : undefined,
  });
  return next;
}

/** One query's outcome: the next task state, and whether this query also read the queue. */
interface Reading {
  readonly task: TaskState;
  readonly listed: boolean;
  /** What the policy needs beyond the task state to plan the next query. */
  readonly expected: PollPolicyInput['expected'];
}

const isPending = (task: TaskState) =>
  (task.status === 'queued' || task.status === 'running') && !task.deadlineExceeded;

/** The policy's view after a tail query, `invocationSeconds` into the invocation. */
function tailInput(reading: Reading, input: TaskInput, now: number, invocationSeconds: number) {
  const status = reading.task.status as PollPolicyInput['status'];
  const secondsUntilDeadline = (Date.parse(input.task.deadline) - now) / 1000;
  return {
    ...policyInput(reading.task, status, reading.expected, now, secondsUntilDeadline),
    invocationSeconds,
  };
}

/** One task query (and maybe one listing), turned into the next task state with `pollCount`. */
async function queryTask(
  input: TaskInput,
  pollCount: number,
  deps: PollDeps,
  policy: PollPolicy,
): Promise<Reading> {
  const previous = input.task;
  const response = await deps.dashscope.getTask(previous.taskId);
  const out = response.output;
  const status = normalizeStatus(out.task_status);
  const now = deps.clock.now();
  const secondsUntilDeadline = (Date.parse(previous.deadline) - now) / 1000;
  const pending = status === 'queued' || status === 'running';
  const deadlineExceeded = pending && secondsUntilDeadline <= 0;
  const log = { generationId: input.id, taskId: previous.taskId, dashscopeRequestId: response.request_id };

  if (deadlineExceeded && out.task_status === 'PENDING') await cancelQuietly(previous.taskId, deps, log);

  const times = {
    submit: parseDashScopeTime(out.submit_time) ?? previous.times.submit,
    scheduled: parseDashScopeTime(out.scheduled_time) ?? previous.times.scheduled,
    end: parseDashScopeTime(out.end_time) ?? previous.times.end,
  };
  const progress = out.task_metrics
    ? {
        total: out.task_metrics.TOTAL,
        succeeded: out.task_metrics.SUCCEEDED,
        failed: out.task_metrics.FAILED,
      }
    : previous.progress;

  let queue = previous.queue;
  let queueListedAt = previous.queueListedAt;
  const listNow =
    !deadlineExceeded &&
    policy.shouldListQueue({
      pending: out.task_status === 'PENDING',
      ahead: queue?.ahead,
      secondsSinceLastList:
        queueListedAt === undefined ? undefined : (now - Date.parse(queueListedAt)) / 1000,
    });
  if (listNow) {
    const ahead = await readQueueAhead(previous.taskId, times.submit ?? previous.submittedAt, {
      ...deps,
      log,
    });
    const at = new Date(deps.clock.now()).toISOString();
    queueListedAt = at;
    if (ahead !== undefined) queue = nextQueueReading(queue, ahead, at);
  }

  const next: TaskState = {
    ...previous,
    status,
    dashscopeStatus: out.task_status,
    progress,
    times,
    pollCount,
    ...(queue ? { queue } : {}),
    ...(queueListedAt ? { queueListedAt } : {}),
    deadlineExceeded,
    error: taskError(status, response, deadlineExceeded, previous.deadline),
    lastRequestId: response.request_id,
  };
  const expected = previous.expectedRun ?? estimateRun(input.request);
  if (pending) {
    next.nextPollSeconds = policy.nextPollSeconds(
      policyInput(next, status, expected, now, secondsUntilDeadline),
    );
  }
  return { task: next, listed: listNow, expected };
}

/** What the policy sees of a task state at `now`. */
function policyInput(
  task: TaskState,
  status: PollPolicyInput['status'],
  expected: PollPolicyInput['expected'],
  now: number,
  secondsUntilDeadline: number,
): PollPolicyInput {
  const secondsSinceSubmit = Math.max(0, (now - Date.parse(task.submittedAt)) / 1000);
  const scheduled = task.times.scheduled === undefined ? Number.NaN : Date.parse(task.times.scheduled);
  // DashScope's clock is not ours (and its zone is inferred): never believe a run older than the task.
  const runningForSeconds =
    status === 'running' && Number.isFinite(scheduled)
      ? Math.min(Math.max(0, (now - scheduled) / 1000), secondsSinceSubmit + 1)
      : undefined;
  const queue = task.queue;
  return {
    status,
    pollCount: task.pollCount,
    secondsUntilDeadline,
    expected,
    secondsSinceSubmit,
    runningForSeconds,
    progress: task.progress,
    queue: queue && {
      ahead: queue.ahead,
      secondsAgo: Math.max(0, (now - Date.parse(queue.at)) / 1000),
      drained: {
        tasks: Math.max(0, queue.firstAhead - queue.ahead),
        seconds: Math.max(0, (Date.parse(queue.at) - Date.parse(queue.firstAt)) / 1000),
      },
    },
    jitter: pollJitter(`${task.taskId}:${task.pollCount}`),
  };
}

/**
 * The number of PENDING Stable Diffusion tasks submitted before ours, from one list call; undefined
 * when the call fails or the answer does not show our task (it has left the queue). Never throws:
 * the queue only refines the policy.
 */
async function readQueueAhead(
  taskId: string,
  submittedAt: string,
  deps: PollDeps & { log: Record<string, unknown> },
): Promise<number | undefined> {
  const submitted = Date.parse(submittedAt);
  try {
    // No model filter: DashScope runs one SD task at a time per account, whatever the SD model.
    const page = await deps.dashscope.listTasks({
      status: 'PENDING',
      startTime: formatCompactCstTime(submitted - LIST_WINDOW_MS),
      endTime: formatCompactCstTime(submitted),
      pageSize: LIST_PAGE_SIZE,
    });
    return queueAheadOf(page, taskId);
  } catch (error) {
    deps.logger.warn('Queue listing failed; polling without it', {
      ...deps.log,
      reason: describeError(error),
    });
    return undefined;
  }
}

/**
 * How many Stable Diffusion tasks wait ahead of ours, from the first page of PENDING tasks submitted
 * up to our own submit second. The list answers newest first, so every row after ours, and every
 * row on later pages, is older: ahead. Only SD tasks share our runner; rows beyond the page are
 * counted in the share of SD rows the page shows. A row without a model name counts.
 */
export function queueAheadOf(page: ListTasksResponse, taskId: string): number | undefined {
  const index = page.data.findIndex((row) => row.task_id === taskId);
  if (index < 0) return undefined;
  const sharesRunner = (row: ListTasksResponse['data'][number]) =>
    row.model_name === undefined || row.model_name.startsWith('stable-diffusion');
  const seen = page.data.slice(index + 1).filter(sharesRunner).length;
  const unseen = Math.max(0, page.total - page.data.length);
  const share = page.data.filter(sharesRunner).length / page.data.length;
  return seen + Math.round(unseen * share);
}

/** The queue reading after a new listing: the first listing is kept to measure the drain rate. */
function nextQueueReading(previous: QueueReading | undefined, ahead: number, at: string): QueueReading {
  return previous
    ? { ...previous, ahead: Math.min(ahead, previous.ahead), at }
    : { ahead, at, firstAhead: ahead, firstAt: at };
}

async function cancelQuietly(taskId: string, deps: PollDeps, log: Record<string, unknown>): Promise<void> {
  try {
    await deps.dashscope.cancel(taskId);
    deps.logger.info('Deadline passed: PENDING task cancelled', log);
  } catch (error) {
    // The task may have started between our query and the cancel: it then finishes unobserved.
    // Either way the generation fails with DeadlineExceeded, so the cancel is best effort.
    const level = error instanceof DashScopeRejectedError ? 'info' : 'warn';
    deps.logger[level]('Deadline passed: cancel not accepted', { ...log, reason: describeError(error) });
  }
}

function taskError(
  status: TaskState['status'],
  response: TaskResponse,
  deadlineExceeded: boolean,
  deadline: string,
): TaskState['error'] {
  const out = response.output;
  if (deadlineExceeded) {
    return { type: 'timeout', message: `Deadline ${deadline} passed while the task was ${out.task_status}` };
  }
  if (status === 'failed') {
    return {
      type: upstreamErrorType({ code: out.code, message: out.message }),
      code: out.code,
      message: `DashScope task failed: ${out.code ?? 'no code'}${out.message ? `: ${out.message}` : ''}`,
    };
  }
  if (status === 'canceled') return { type: 'canceled', message: 'The DashScope task was cancelled' };
  if (status === 'expired') {
    return {
      type: 'expired',
      message: 'DashScope no longer knows the task (UNKNOWN): its 24 h retention passed',
    };
  }
  return undefined;
}
