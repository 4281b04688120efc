import type { Clock } from '../shared/clock.js';
import { type DashScopeClient, parseDashScopeTime } from '../shared/dashscope/client.js';
import type { TaskResponse } from '../shared/dashscope/schemas.js';
import { DashScopeRejectedError, describeError, type ErrorType } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import { nextPollSeconds } from '../shared/poll-policy.js';
import { normalizeStatus, type TaskInput, type TaskState } from '../shared/workflow-state.js';

export interface PollDeps {
  readonly dashscope: DashScopeClient;
  readonly clock: Clock;
  readonly logger: Logger;
}

/**
 * Queries the task once and returns the next task state: normalized status, progress, DashScope's
 * times and the seconds to wait before the next poll. Past the deadline, a task still PENDING is
 * cancelled (a RUNNING one cannot be) and `deadlineExceeded` tells the workflow to fail.
 * Throws the client's named errors; the workflow retries the retryable ones.
 */
export async function pollGeneration(input: TaskInput, deps: PollDeps): Promise<TaskState> {
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

  const next: TaskState = {
    ...previous,
    status,
    dashscopeStatus: out.task_status,
    progress: out.task_metrics
      ? {
          total: out.task_metrics.TOTAL,
          succeeded: out.task_metrics.SUCCEEDED,
          failed: out.task_metrics.FAILED,
        }
      : previous.progress,
    times: {
      submit: parseDashScopeTime(out.submit_time) ?? previous.times.submit,
      scheduled: parseDashScopeTime(out.scheduled_time) ?? previous.times.scheduled,
      end: parseDashScopeTime(out.end_time) ?? previous.times.end,
    },
    pollCount: previous.pollCount + 1,
    nextPollSeconds: pending
      ? nextPollSeconds({ status, pollCount: previous.pollCount + 1, secondsUntilDeadline })
      : previous.nextPollSeconds,
    deadlineExceeded,
    error: taskError(status, response, deadlineExceeded, previous.deadline),
    lastRequestId: response.request_id,
  };
  deps.logger.info('DashScope task polled', {
    ...log,
    status,
    progress: next.progress,
    pollCount: next.pollCount,
    nextPollSeconds: pending ? next.nextPollSeconds : undefined,
  });
  return next;
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
    const type: ErrorType = out.code === 'DataInspectionFailed' ? 'content_policy' : 'upstream_error';
    return {
      type,
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
