import { describe, expect, it } from 'vitest';
import { pollGeneration } from '../../functions/poll/poll.js';
import type { Clock } from '../../functions/shared/clock.js';
import type { DashScopeClient, ListTasksQuery } from '../../functions/shared/dashscope/client.js';
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
import { nextPollSeconds, type PollPolicy, pollJitter } from '../../functions/shared/poll-policy.js';
import { estimateRun } from '../../functions/shared/run-time-estimate.js';
import { type TaskInput, type TaskState, taskStateSchema } from '../../functions/shared/workflow-state.js';

const NOW = Date.parse('2024-06-14T06:31:00.000Z');
const TASK_ID = '86ecf553-d340-4e21-af6e-a0c6a421c010';

/** An in-memory DashScope: answers every query with `task`, every list with `list`, and records calls. */
class FakeDashScope implements DashScopeClient {
  readonly queried: string[] = [];
  readonly cancelled: string[] = [];
  readonly listed: ListTasksQuery[] = [];
  readonly task: TaskResponse | Error;
  readonly cancelError: Error | undefined;
  list: ListTasksResponse | Error = new Error('no list answer prepared');

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

  async listTasks(query: ListTasksQuery): Promise<ListTasksResponse> {
    this.listed.push(query);
    if (this.list instanceof Error) throw this.list;
    return this.list;
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

async function poll(
  answer: TaskResponse | Error,
  task: Partial<TaskState> = {},
  cancelError?: Error,
  list?: ListTasksResponse | Error,
) {
  const dashscope = new FakeDashScope(answer, cancelError);
  if (list) dashscope.list = list;
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

  it('maps FAILED to failed with the type its code has everywhere, naming the code', async () => {
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
      type: 'invalid_request',
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

  it('takes the next wait from the poll policy, with the run age, progress and estimate of the state', async () => {
    // Prepare
    const expectedRun = { seconds: 30, overheadSeconds: 1, spread: 0.2 };
    const scheduled = '2024-06-14 14:30:50.000'; // 10 s before NOW, in CST

    // Act
    const { state } = await poll(
      taskAnswer({
        task_status: 'RUNNING',
        scheduled_time: scheduled,
        task_metrics: { TOTAL: 4, SUCCEEDED: 1, FAILED: 0 },
      }),
      { pollCount: 7, expectedRun },
    );

    // Assess
    expect(state.nextPollSeconds).toBe(
      nextPollSeconds({
        status: 'running',
        pollCount: 8,
        secondsUntilDeadline: 600,
        expected: expectedRun,
        secondsSinceSubmit: 60,
        runningForSeconds: 10,
        progress: { total: 4, succeeded: 1, failed: 0 },
        jitter: pollJitter(`${TASK_ID}:8`),
      }),
    );
  });

  it('estimates the run from the request when the state has no estimate (older executions)', async () => {
    // Act
    const { state } = await poll(taskAnswer({ task_status: 'RUNNING' }));

    // Assess: the request is 4 images of 1024*1024 at 40 steps.
    expect(state.nextPollSeconds).toBe(
      nextPollSeconds({
        status: 'running',
        pollCount: 4,
        secondsUntilDeadline: 600,
        expected: estimateRun(inputWith().request),
        secondsSinceSubmit: 60,
        jitter: pollJitter(`${TASK_ID}:4`),
      }),
    );
  });

  it('uses the policy it is given', async () => {
    // Prepare
    const policy: PollPolicy = { name: 'fixed', nextPollSeconds: () => 42, shouldListQueue: () => false };
    const dashscope = new FakeDashScope(taskAnswer({ task_status: 'PENDING' }));

    // Act
    const state = await pollGeneration(inputWith(), {
      dashscope,
      clock: fixedClock(NOW),
      logger: silentLogger,
      policy,
    });

    // Assess
    expect(state.nextPollSeconds).toBe(42);
    expect(dashscope.listed).toEqual([]);
  });

  it('keeps the last wait once the task has ended', async () => {
    // Act
    const { state } = await poll(taskAnswer({ task_status: 'SUCCEEDED' }), { nextPollSeconds: 2 });

    // Assess
    expect(state.nextPollSeconds).toBe(2);
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

/** A list answer (newest first) of `total` PENDING tasks whose first rows are `ids` (an SD model each). */
function listAnswer(total: number, ids: string[], model = 'stable-diffusion-3.5-large'): ListTasksResponse {
  return {
    request_id: 'req-list',
    data: ids.map((task_id) => ({ task_id, status: 'PENDING' as const, model_name: model })),
    total,
  };
}

const SUBMITTED_CST = '2024-06-14 14:30:00.500'; // 06:30:00.500Z

describe('pollGeneration: the queue ahead', () => {
  it('lists the PENDING tasks of the account submitted up to its own submit second', async () => {
    // Act
    const { dashscope } = await poll(
      taskAnswer({ task_status: 'PENDING', submit_time: SUBMITTED_CST }),
      {},
      undefined,
      listAnswer(5, ['newer', TASK_ID, 'older']),
    );

    // Assess
    expect(dashscope.listed).toEqual([
      {
        status: 'PENDING',
        startTime: '20240613143001',
        endTime: '20240614143000',
        pageSize: 100,
      },
    ]);
  });

  it('counts the rows after its own as ahead (the list answers newest first)', async () => {
    // Act
    const { state } = await poll(
      taskAnswer({ task_status: 'PENDING' }),
      {},
      undefined,
      listAnswer(12, ['newer', TASK_ID, 'older']),
    );

    // Assess
    expect(state.queue).toEqual({
      ahead: 10,
      at: new Date(NOW).toISOString(),
      firstAhead: 10,
      firstAt: new Date(NOW).toISOString(),
    });
    expect(state.queueListedAt).toBe(new Date(NOW).toISOString());
  });

  it('counts only the Stable Diffusion tasks among the rows after its own', async () => {
    // Prepare
    const page = listAnswer(5, ['newer', TASK_ID, 'older-sd']);
    page.data.push(
      { task_id: 'older-wanx', status: 'PENDING', model_name: 'wanx2.1-t2i-turbo' },
      { task_id: 'older-xl', status: 'PENDING', model_name: 'stable-diffusion-xl' },
    );

    // Act
    const { state } = await poll(taskAnswer({ task_status: 'PENDING' }), {}, undefined, page);

    // Assess
    expect(state.queue?.ahead).toBe(2);
  });

  it('extrapolates the rows beyond the first page by the share of SD rows on it', async () => {
    // Prepare: 2 rows shown, 1 of them SD, 40 more on later pages.
    const page = listAnswer(42, [TASK_ID]);
    page.data.push({ task_id: 'older-wanx', status: 'PENDING', model_name: 'wanx2.1-t2i-turbo' });

    // Act
    const { state } = await poll(taskAnswer({ task_status: 'PENDING' }), {}, undefined, page);

    // Assess
    expect(state.queue?.ahead).toBe(20);
  });

  it('keeps the first reading, to measure how fast the queue drains', async () => {
    // Prepare
    const first = {
      ahead: 30,
      at: '2024-06-14T06:20:00.000Z',
      firstAhead: 30,
      firstAt: '2024-06-14T06:20:00.000Z',
    };

    // Act
    const { state } = await poll(
      taskAnswer({ task_status: 'PENDING' }),
      { queue: first, queueListedAt: first.at },
      undefined,
      listAnswer(9, [TASK_ID]),
    );

    // Assess
    expect(state.queue).toEqual({ ...first, ahead: 8, at: new Date(NOW).toISOString() });
  });

  it('passes the queue and its drain rate to the policy', async () => {
    // Prepare
    const first = {
      ahead: 30,
      at: '2024-06-14T06:20:00.000Z',
      firstAhead: 30,
      firstAt: '2024-06-14T06:20:00.000Z',
    };
    const expectedRun = { seconds: 20, overheadSeconds: 1, spread: 0.2 };

    // Act
    const { state } = await poll(
      taskAnswer({ task_status: 'PENDING' }),
      { queue: first, queueListedAt: first.at, expectedRun },
      undefined,
      listAnswer(9, [TASK_ID]),
    );

    // Assess
    expect(state.nextPollSeconds).toBe(
      nextPollSeconds({
        status: 'queued',
        pollCount: 4,
        secondsUntilDeadline: 600,
        expected: expectedRun,
        secondsSinceSubmit: 60,
        queue: { ahead: 8, secondsAgo: 0, drained: { tasks: 22, seconds: 660 } },
        jitter: pollJitter(`${TASK_ID}:4`),
      }),
    );
  });

  it('does not fail the poll when the list fails, and waits before listing again', async () => {
    // Prepare
    const throttled = new DashScopeThrottledError('GET /tasks: HTTP 429 Throttling.RateQuota');

    // Act
    const { state } = await poll(taskAnswer({ task_status: 'PENDING' }), {}, undefined, throttled);

    // Assess
    expect(state.status).toBe('queued');
    expect(state.queue).toBeUndefined();
    expect(state.queueListedAt).toBe(new Date(NOW).toISOString());
  });

  it('keeps no reading when its own task is not on the page', async () => {
    // Act
    const { state } = await poll(
      taskAnswer({ task_status: 'PENDING' }),
      {},
      undefined,
      listAnswer(40, ['a', 'b', 'c']),
    );

    // Assess
    expect(state.queue).toBeUndefined();
  });

  it.each(['RUNNING', 'SUSPENDED', 'SUCCEEDED'] as const)('does not list a %s task', async (task_status) => {
    // Act
    const { dashscope } = await poll(taskAnswer({ task_status }), {}, undefined, listAnswer(1, [TASK_ID]));

    // Assess
    expect(dashscope.listed).toEqual([]);
  });

  it('does not list again within the policy interval', async () => {
    // Act
    const { dashscope } = await poll(
      taskAnswer({ task_status: 'PENDING' }),
      { queueListedAt: new Date(NOW - 2000).toISOString() },
      undefined,
      listAnswer(1, [TASK_ID]),
    );

    // Assess
    expect(dashscope.listed).toEqual([]);
  });

  it('does not list past the deadline', async () => {
    // Act
    const { dashscope } = await poll(
      taskAnswer({ task_status: 'PENDING' }),
      PAST_DEADLINE,
      undefined,
      listAnswer(1, [TASK_ID]),
    );

    // Assess
    expect(dashscope.listed).toEqual([]);
  });
});

describe('pollGeneration: tail polling within one invocation', () => {
  const RUNNING = taskAnswer({ task_status: 'RUNNING' });
  const SUCCEEDED = taskAnswer({ task_status: 'SUCCEEDED', results: [{ url: 'example_url_1' }] });

  /** Answers each query with the next answer of the list, the last one for ever. */
  class ScriptedDashScope extends FakeDashScope {
    readonly #answers: Array<TaskResponse | Error>;

    constructor(answers: Array<TaskResponse | Error>) {
      super(RUNNING);
      this.#answers = answers;
    }

    override async getTask(taskId: string): Promise<TaskResponse> {
      this.queried.push(taskId);
      const answer = this.#answers.length > 1 ? this.#answers.shift() : this.#answers[0];
      if (answer === undefined || answer instanceof Error) throw answer ?? new Error('no answer');
      return answer;
    }
  }

  /** A clock that only the injected sleep moves, and the sleeps it was asked for. */
  function virtualTime() {
    let now = NOW;
    const sleeps: number[] = [];
    return {
      clock: { now: () => now },
      sleeps,
      sleep: async (ms: number) => {
        sleeps.push(ms);
        now += ms;
      },
    };
  }

  /** A policy that asks for the given sleeps in turn (undefined: return), and records what it saw. */
  function scriptedPolicy(answers: Array<number | undefined>) {
    const seen: number[] = [];
    const policy: PollPolicy = {
      name: 'scripted',
      nextPollSeconds: () => 7,
      shouldListQueue: () => false,
      tailPollMs: (tailInput) => {
        seen.push(tailInput.invocationSeconds);
        return answers.shift();
      },
    };
    return { policy, seen };
  }

  /** One invocation over scripted answers and policy sleeps, in virtual time. */
  async function tailPoll(
    answers: Array<TaskResponse | Error>,
    sleeps: Array<number | undefined>,
    task: Partial<TaskState> = {},
  ) {
    const dashscope = new ScriptedDashScope(answers);
    const time = virtualTime();
    const { policy, seen } = scriptedPolicy(sleeps);
    const state = await pollGeneration(inputWith(task), { dashscope, logger: silentLogger, policy, ...time });
    return { state, dashscope, sleeps: time.sleeps, seen };
  }

  it('queries again after each sleep the policy asks for, until the task ends', async () => {
    // Act
    const { state, dashscope, sleeps } = await tailPoll([RUNNING, RUNNING, SUCCEEDED], [300, 400, 500]);

    // Assess
    expect(state.status).toBe('succeeded');
    expect(dashscope.queried).toHaveLength(3);
    expect(sleeps).toEqual([300, 400]);
  });

  it('counts one poll per invocation, however many queries it makes', async () => {
    // Act
    const { state } = await tailPoll([RUNNING, RUNNING, SUCCEEDED], [300, 300], { pollCount: 3 });

    // Assess
    expect(state.pollCount).toBe(4);
  });

  it("returns to the Wait state when the policy says so, with the last answer's wait", async () => {
    // Act
    const { state, dashscope } = await tailPoll([RUNNING], [300, undefined]);

    // Assess
    expect(dashscope.queried).toHaveLength(2);
    expect(state.status).toBe('running');
    expect(state.nextPollSeconds).toBe(7);
  });

  it('tells the policy how long the invocation has run, on the injected clock', async () => {
    // Act
    const { seen } = await tailPoll([RUNNING], [300, 500, undefined]);

    // Assess
    expect(seen).toEqual([0, 0.3, 0.8]);
  });

  it('makes one query when it is given no sleep, whatever the policy', async () => {
    // Prepare
    const dashscope = new ScriptedDashScope([RUNNING, SUCCEEDED]);
    const { policy } = scriptedPolicy([300]);

    // Act
    const state = await pollGeneration(inputWith(), {
      dashscope,
      clock: fixedClock(NOW),
      logger: silentLogger,
      policy,
    });

    // Assess
    expect(dashscope.queried).toHaveLength(1);
    expect(state.status).toBe('running');
  });

  it('returns the last answer when a tail query fails, instead of failing the poll', async () => {
    // Act
    const { state, dashscope } = await tailPoll(
      [
        taskAnswer({ task_status: 'RUNNING', task_metrics: { TOTAL: 4, SUCCEEDED: 1, FAILED: 0 } }),
        new DashScopeThrottledError('429 from the tail'),
      ],
      [300, 300],
    );

    // Assess
    expect(dashscope.queried).toHaveLength(2);
    expect(state.status).toBe('running');
    expect(state.progress).toEqual({ total: 4, succeeded: 1, failed: 0 });
  });

  it('tells the policy whether the task was seen starting within the invocation', async () => {
    // Prepare
    const changed: Array<boolean | undefined> = [];
    const policy: PollPolicy = {
      name: 'recording',
      nextPollSeconds: () => 7,
      shouldListQueue: () => false,
      tailPollMs: (tailInput) => {
        changed.push(tailInput.statusChanged);
        return changed.length < 3 ? 1000 : undefined;
      },
    };
    const PENDING = taskAnswer({ task_status: 'PENDING' });
    const time = virtualTime();

    // Act
    await pollGeneration(inputWith(), {
      dashscope: new ScriptedDashScope([PENDING, RUNNING]),
      logger: silentLogger,
      policy,
      ...time,
    });

    // Assess
    expect(changed).toEqual([false, true, true]);
  });

  it('returns as soon as it sees a long task start, with the adaptive policy (#24)', async () => {
    // Prepare: queued, then RUNNING at the second query; 4 images of 1024*1024 run ~77 s.
    const dashscope = new ScriptedDashScope([taskAnswer({ task_status: 'PENDING' }), RUNNING]);
    const time = virtualTime();

    // Act
    const state = await pollGeneration(inputWith({ submittedAt: new Date(NOW).toISOString() }), {
      dashscope,
      logger: silentLogger,
      ...time,
    });

    // Assess
    expect(dashscope.queried).toHaveLength(2);
    expect(state.status).toBe('running');
    expect(time.sleeps).toHaveLength(1);
  });

  it('does not tail-poll a task past its deadline', async () => {
    // Act
    const { state, dashscope } = await tailPoll([RUNNING, SUCCEEDED], [300], PAST_DEADLINE);

    // Assess
    expect(dashscope.queried).toHaveLength(1);
    expect(state.deadlineExceeded).toBe(true);
  });
});
