import { describe, expect, it } from 'vitest';
import { pollGeneration } from '../../functions/poll/poll.js';
import type { Clock } from '../../functions/shared/clock.js';
import type { DashScopeClient } from '../../functions/shared/dashscope/client.js';
import type {
  ListTasksResponse,
  SubmitBody,
  SubmitResponse,
  TaskResponse,
} from '../../functions/shared/dashscope/schemas.js';
import {
  DashScopeRejectedError,
  DashScopeThrottledError,
  DashScopeTimeoutError,
} from '../../functions/shared/errors.js';
import { generationRequestSchema } from '../../functions/shared/generation-request.js';
import { silentLogger } from '../../functions/shared/logger.js';
import { nextPollSeconds } from '../../functions/shared/poll-policy.js';
import { type TaskInput, type TaskState, taskStateSchema } from '../../functions/shared/workflow-state.js';

const NOW = Date.parse('2024-06-14T06:31:00.000Z');
const TASK_ID = '86ecf553-d340-4e21-af6e-a0c6a421c010';

/** An in-memory DashScope: answers every query with `task` and records queries and cancels. */
class FakeDashScope implements DashScopeClient {
  readonly queried: string[] = [];
  readonly cancelled: string[] = [];
  readonly task: TaskResponse | Error;
  readonly cancelError: Error | undefined;

  constructor(task: TaskResponse | Error, cancelError?: Error) {
    this.task = task;
    this.cancelError = cancelError;
  }

  async submit(_body: SubmitBody): Promise<SubmitResponse> {
    throw new Error('poll must not submit');
  }

  async getTask(taskId: string): Promise<TaskResponse> {
    this.queried.push(taskId);
    if (this.task instanceof Error) throw this.task;
    return this.task;
  }

  async cancel(taskId: string): Promise<void> {
    this.cancelled.push(taskId);
    if (this.cancelError) throw this.cancelError;
  }

  async listTasks(): Promise<ListTasksResponse> {
    throw new Error('poll must not list');
  }
}

const fixedClock = (ms: number): Clock => ({ now: () => ms });

function taskAnswer(output: Omit<TaskResponse['output'], 'task_id'>): TaskResponse {
  return { request_id: 'req-poll', output: { task_id: TASK_ID, ...output } };
}

function inputWith(task: Partial<TaskState> = {}): TaskInput {
  return {
    id: 'gen-1',
    request: generationRequestSchema.parse({ prompt: 'a running cat', n: 4 }),
    task: {
      taskId: TASK_ID,
      seed: 42,
      submitRequestId: 'req-submit',
      submittedAt: new Date(NOW - 60_000).toISOString(),
      deadline: new Date(NOW + 600_000).toISOString(),
      status: 'queued',
      dashscopeStatus: 'PENDING',
      times: {},
      pollCount: 3,
      nextPollSeconds: 2,
      deadlineExceeded: false,
      ...task,
    },
  };
}

const PAST_DEADLINE = { deadline: new Date(NOW - 1000).toISOString() };

async function poll(answer: TaskResponse | Error, task: Partial<TaskState> = {}, cancelError?: Error) {
  const dashscope = new FakeDashScope(answer, cancelError);
  const state = await pollGeneration(inputWith(task), {
    dashscope,
    clock: fixedClock(NOW),
    logger: silentLogger,
  });
  return { state, dashscope };
}

describe('pollGeneration: status mapping', () => {
  it('queries the task of the state', async () => {
    // Act
    const { dashscope } = await poll(taskAnswer({ task_status: 'PENDING' }));

    // Assess
    expect(dashscope.queried).toEqual([TASK_ID]);
  });

  it('maps PENDING to queued without an error', async () => {
    // Act
    const { state } = await poll(taskAnswer({ task_status: 'PENDING' }));

    // Assess
    expect(state).toMatchObject({ status: 'queued', dashscopeStatus: 'PENDING', deadlineExceeded: false });
    expect(state.error).toBeUndefined();
  });

  it('maps SUSPENDED to queued', async () => {
    // Act
    const { state } = await poll(taskAnswer({ task_status: 'SUSPENDED' }));

    // Assess
    expect(state).toMatchObject({ status: 'queued', dashscopeStatus: 'SUSPENDED' });
  });

  it('maps RUNNING to running with the progress of task_metrics', async () => {
    // Act
    const { state } = await poll(
      taskAnswer({ task_status: 'RUNNING', task_metrics: { TOTAL: 4, SUCCEEDED: 1, FAILED: 0 } }),
    );

    // Assess
    expect(state.status).toBe('running');
    expect(state.progress).toEqual({ total: 4, succeeded: 1, failed: 0 });
  });

  it('keeps the previous progress when an answer carries no task_metrics', async () => {
    // Prepare
    const progress = { total: 4, succeeded: 2, failed: 0 };

    // Act
    const { state } = await poll(taskAnswer({ task_status: 'RUNNING' }), { status: 'running', progress });

    // Assess
    expect(state.progress).toEqual(progress);
  });

  it('maps SUCCEEDED to succeeded with DashScope times converted to UTC', async () => {
    // Act
    const { state } = await poll(
      taskAnswer({
        task_status: 'SUCCEEDED',
        submit_time: '2024-06-14 14:30:44.096',
        scheduled_time: '2024-06-14 14:30:44.112',
        end_time: '2024-06-14 14:31:04.197',
        results: [{ url: 'example_url_1' }, { url: 'example_url_2' }],
        task_metrics: { TOTAL: 2, SUCCEEDED: 2, FAILED: 0 },
      }),
    );

    // Assess
    expect(state.status).toBe('succeeded');
    expect(state.error).toBeUndefined();
    expect(state.times).toEqual({
      submit: '2024-06-14T06:30:44.096Z',
      scheduled: '2024-06-14T06:30:44.112Z',
      end: '2024-06-14T06:31:04.197Z',
    });
  });

  it('keeps the times already known when an answer lacks them', async () => {
    // Prepare
    const times = { submit: '2024-06-14T06:30:44.096Z' };

    // Act
    const { state } = await poll(taskAnswer({ task_status: 'RUNNING' }), { status: 'running', times });

    // Assess
    expect(state.times.submit).toBe('2024-06-14T06:30:44.096Z');
  });

  it('maps FAILED to failed with an upstream_error naming the code', async () => {
    // Act
    const { state } = await poll(
      taskAnswer({
        task_status: 'FAILED',
        code: 'InvalidParameter',
        message: 'The image source is invalid.',
      }),
    );

    // Assess
    expect(state.status).toBe('failed');
    expect(state.error).toEqual({
      type: 'upstream_error',
      code: 'InvalidParameter',
      message: expect.stringContaining('InvalidParameter'),
    });
  });

  it('maps a FAILED DataInspectionFailed task to a content_policy error', async () => {
    // Act
    const { state } = await poll(
      taskAnswer({
        task_status: 'FAILED',
        code: 'DataInspectionFailed',
        message: 'Output data may contain inappropriate content.',
      }),
    );

    // Assess
    expect(state.status).toBe('failed');
    expect(state.error).toMatchObject({ type: 'content_policy', code: 'DataInspectionFailed' });
  });

  it('maps CANCELED to canceled', async () => {
    // Act
    const { state } = await poll(taskAnswer({ task_status: 'CANCELED' }));

    // Assess
    expect(state.status).toBe('canceled');
    expect(state.error?.type).toBe('canceled');
  });

  it('maps UNKNOWN to expired', async () => {
    // Act
    const { state } = await poll(taskAnswer({ task_status: 'UNKNOWN' }));

    // Assess
    expect(state.status).toBe('expired');
    expect(state.error?.type).toBe('expired');
  });
});

describe('pollGeneration: bookkeeping', () => {
  it('increments pollCount', async () => {
    // Act
    const { state } = await poll(taskAnswer({ task_status: 'PENDING' }), { pollCount: 3 });

    // Assess
    expect(state.pollCount).toBe(4);
  });

  it('takes the next wait from the poll policy at the new poll count', async () => {
    // Act
    const { state } = await poll(taskAnswer({ task_status: 'RUNNING' }), { pollCount: 7 });

    // Assess
    expect(state.nextPollSeconds).toBe(
      nextPollSeconds({ status: 'running', pollCount: 8, secondsUntilDeadline: 600 }),
    );
  });

  it('records the request id of the last answer', async () => {
    // Act
    const { state } = await poll(taskAnswer({ task_status: 'RUNNING' }));

    // Assess
    expect(state.lastRequestId).toBe('req-poll');
  });

  it('keeps the submit facts of the previous state', async () => {
    // Act
    const { state } = await poll(taskAnswer({ task_status: 'RUNNING' }));

    // Assess
    expect(state).toMatchObject({ taskId: TASK_ID, seed: 42, submitRequestId: 'req-submit' });
  });

  it.each(['PENDING', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELED', 'UNKNOWN'] as const)(
    'returns a state the workflow schema accepts after %s',
    async (task_status) => {
      // Act
      const { state } = await poll(
        taskAnswer({ task_status, task_metrics: { TOTAL: 4, SUCCEEDED: 0, FAILED: 0 } }),
      );

      // Assess
      expect(taskStateSchema.safeParse(state).success).toBe(true);
    },
  );

  it('lets a query error through unchanged for the workflow to retry', async () => {
    // Prepare
    const throttled = new DashScopeThrottledError('GET /tasks/x: HTTP 429 Throttling');

    // Act
    const act = poll(throttled);

    // Assess
    await expect(act).rejects.toBe(throttled);
  });
});

describe('pollGeneration: the deadline', () => {
  it('does not cancel a PENDING task before the deadline', async () => {
    // Act
    const { state, dashscope } = await poll(taskAnswer({ task_status: 'PENDING' }));

    // Assess
    expect(dashscope.cancelled).toEqual([]);
    expect(state.deadlineExceeded).toBe(false);
  });

  it('cancels a task still PENDING past the deadline', async () => {
    // Act
    const { dashscope } = await poll(taskAnswer({ task_status: 'PENDING' }), PAST_DEADLINE);

    // Assess
    expect(dashscope.cancelled).toEqual([TASK_ID]);
  });

  it('reports deadlineExceeded with a timeout error for a PENDING task past the deadline', async () => {
    // Act
    const { state } = await poll(taskAnswer({ task_status: 'PENDING' }), PAST_DEADLINE);

    // Assess
    expect(state.deadlineExceeded).toBe(true);
    expect(state.error?.type).toBe('timeout');
  });

  it('treats the deadline instant itself as passed', async () => {
    // Act
    const { state } = await poll(taskAnswer({ task_status: 'PENDING' }), {
      deadline: new Date(NOW).toISOString(),
    });

    // Assess
    expect(state.deadlineExceeded).toBe(true);
  });

  it('does not cancel a RUNNING task past the deadline', async () => {
    // Act
    const { dashscope } = await poll(taskAnswer({ task_status: 'RUNNING' }), PAST_DEADLINE);

    // Assess
    expect(dashscope.cancelled).toEqual([]);
  });

  it('reports deadlineExceeded for a RUNNING task past the deadline', async () => {
    // Act
    const { state } = await poll(taskAnswer({ task_status: 'RUNNING' }), PAST_DEADLINE);

    // Assess
    expect(state.deadlineExceeded).toBe(true);
    expect(state.error?.type).toBe('timeout');
  });

  it('does not fail a task that succeeded past the deadline', async () => {
    // Act
    const { state, dashscope } = await poll(
      taskAnswer({ task_status: 'SUCCEEDED', results: [{ url: 'example_url_1' }] }),
      PAST_DEADLINE,
    );

    // Assess
    expect(state.deadlineExceeded).toBe(false);
    expect(state.error).toBeUndefined();
    expect(dashscope.cancelled).toEqual([]);
  });

  it('still reports deadlineExceeded when the cancel is rejected with DashScopeRejectedError', async () => {
    // Prepare
    const rejected = new DashScopeRejectedError('POST /tasks/x/cancel: HTTP 400 UnsupportedOperation', {
      upstreamCode: 'UnsupportedOperation',
      httpStatus: 400,
    });

    // Act
    const { state, dashscope } = await poll(taskAnswer({ task_status: 'PENDING' }), PAST_DEADLINE, rejected);

    // Assess
    expect(dashscope.cancelled).toEqual([TASK_ID]);
    expect(state.deadlineExceeded).toBe(true);
  });

  it('does not throw when the cancel times out', async () => {
    // Prepare
    const timeout = new DashScopeTimeoutError('POST /tasks/x/cancel: no answer within 10000 ms');

    // Act
    const { state } = await poll(taskAnswer({ task_status: 'PENDING' }), PAST_DEADLINE, timeout);

    // Assess
    expect(state.deadlineExceeded).toBe(true);
  });
});
