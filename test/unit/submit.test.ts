import { describe, expect, it, vi } from 'vitest';
import type { Clock } from '../../functions/shared/clock.js';
import { type DashScopeClient, toSubmitBody } from '../../functions/shared/dashscope/client.js';
import type {
  ListTasksResponse,
  SubmitBody,
  SubmitResponse,
  TaskResponse,
} from '../../functions/shared/dashscope/schemas.js';
import { ContentPolicyError } from '../../functions/shared/errors.js';
import {
  type GenerationRequestInput,
  generationRequestSchema,
  MAX_SEED,
} from '../../functions/shared/generation-request.js';
import { silentLogger } from '../../functions/shared/logger.js';
import { nextPollSeconds, pollJitter } from '../../functions/shared/poll-policy.js';
import { estimateRun, resolveRunTimeModel } from '../../functions/shared/run-time-estimate.js';
import { taskStateSchema } from '../../functions/shared/workflow-state.js';
import { type SubmitDeps, submitGeneration } from '../../functions/submit/submit.js';

const NOW = Date.parse('2024-06-14T06:30:44.000Z');
const DEADLINE_SECONDS = 3600;
const SEED_SUBMIT_ANSWER: SubmitResponse = {
  request_id: '7574ee8f-38a3-4b1e-9280-11c33ab46e51',
  output: { task_id: '13b1848b-5493-4c0e-8c44-68d038b492af', task_status: 'PENDING' },
};

/** An in-memory DashScope: records every submitted body and answers with `answer`. */
class FakeDashScope implements DashScopeClient {
  readonly submitted: SubmitBody[] = [];
  readonly answer: SubmitResponse | Error;

  constructor(answer: SubmitResponse | Error = SEED_SUBMIT_ANSWER) {
    this.answer = answer;
  }

  async submit(body: SubmitBody): Promise<SubmitResponse> {
    this.submitted.push(body);
    if (this.answer instanceof Error) throw this.answer;
    return this.answer;
  }

  async getTask(): Promise<TaskResponse> {
    throw new Error('submit must not query');
  }

  async cancel(): Promise<void> {
    throw new Error('submit must not cancel');
  }

  async listTasks(): Promise<ListTasksResponse> {
    throw new Error('submit must not list');
  }
}

const fixedClock = (ms: number): Clock => ({ now: () => ms });

function submitInput(request: GenerationRequestInput = { prompt: 'a running cat' }) {
  return { id: 'gen-1', request: generationRequestSchema.parse(request) };
}

function depsWith(dashscope: DashScopeClient, extra: Partial<SubmitDeps> = {}): SubmitDeps {
  return {
    dashscope,
    clock: fixedClock(NOW),
    logger: silentLogger,
    deadlineSeconds: DEADLINE_SECONDS,
    randomSeed: () => 123_456,
    ...extra,
  };
}

describe('submitGeneration: the seed', () => {
  it('picks a seed with randomSeed when the request has none', async () => {
    // Prepare
    const dashscope = new FakeDashScope();

    // Act
    const state = await submitGeneration(submitInput(), depsWith(dashscope));

    // Assess
    expect(state.seed).toBe(123_456);
  });

  it('sends the picked seed to DashScope', async () => {
    // Prepare
    const dashscope = new FakeDashScope();

    // Act
    await submitGeneration(submitInput(), depsWith(dashscope));

    // Assess
    expect(dashscope.submitted.map((body) => body.parameters.seed)).toEqual([123_456]);
  });

  it('keeps the seed of the request and does not draw one', async () => {
    // Prepare
    const dashscope = new FakeDashScope();
    const randomSeed = vi.fn(() => 123_456);

    // Act
    const state = await submitGeneration(
      submitInput({ prompt: 'a cat', seed: 42 }),
      depsWith(dashscope, { randomSeed }),
    );

    // Assess
    expect(state.seed).toBe(42);
    expect(dashscope.submitted[0]?.parameters.seed).toBe(42);
    expect(randomSeed).not.toHaveBeenCalled();
  });

  it('keeps a seed of 0 rather than drawing one', async () => {
    // Prepare
    const dashscope = new FakeDashScope();

    // Act
    const state = await submitGeneration(submitInput({ prompt: 'a cat', seed: 0 }), depsWith(dashscope));

    // Assess
    expect(state.seed).toBe(0);
  });

  it('draws a default seed that leaves room for seed + 3 within MAX_SEED', async () => {
    // Prepare
    const dashscope = new FakeDashScope();

    // Act
    const state = await submitGeneration(submitInput(), depsWith(dashscope, { randomSeed: undefined }));

    // Assess
    expect(Number.isInteger(state.seed)).toBe(true);
    expect(state.seed).toBeGreaterThanOrEqual(0);
    expect(state.seed + 3).toBeLessThanOrEqual(MAX_SEED);
  });
});

describe('submitGeneration: the request', () => {
  it('submits the body toSubmitBody builds from the request and the seed', async () => {
    // Prepare
    const dashscope = new FakeDashScope();
    const input = submitInput({
      prompt: 'a running cat',
      negative_prompt: 'yellow cat',
      n: 4,
      size: '512*512',
    });

    // Act
    await submitGeneration(input, depsWith(dashscope));

    // Assess
    expect(dashscope.submitted).toEqual([toSubmitBody(input.request, 123_456)]);
  });

  it('lets a submit error through unchanged', async () => {
    // Prepare
    const refused = new ContentPolicyError(
      'POST /services/aigc/text2image/image-synthesis: HTTP 400 DataInspectionFailed',
    );
    const dashscope = new FakeDashScope(refused);

    // Act
    const act = submitGeneration(submitInput(), depsWith(dashscope));

    // Assess
    await expect(act).rejects.toBe(refused);
  });
});

describe('submitGeneration: the first task state', () => {
  it('sets the deadline to now + deadlineSeconds', async () => {
    // Act
    const state = await submitGeneration(submitInput(), depsWith(new FakeDashScope()));

    // Assess
    expect(state.deadline).toBe(new Date(NOW + DEADLINE_SECONDS * 1000).toISOString());
  });

  it('records the submit time from the clock', async () => {
    // Act
    const state = await submitGeneration(submitInput(), depsWith(new FakeDashScope()));

    // Assess
    expect(state.submittedAt).toBe(new Date(NOW).toISOString());
  });

  it('starts queued, with pollCount 0 and the deadline not exceeded', async () => {
    // Act
    const state = await submitGeneration(submitInput(), depsWith(new FakeDashScope()));

    // Assess
    expect(state).toMatchObject({
      status: 'queued',
      dashscopeStatus: 'PENDING',
      pollCount: 0,
      deadlineExceeded: false,
    });
  });

  it('records the task id and the request id of the answer', async () => {
    // Act
    const state = await submitGeneration(submitInput(), depsWith(new FakeDashScope()));

    // Assess
    expect(state).toMatchObject({
      taskId: SEED_SUBMIT_ANSWER.output.task_id,
      submitRequestId: SEED_SUBMIT_ANSWER.request_id,
      lastRequestId: SEED_SUBMIT_ANSWER.request_id,
    });
  });

  it('records the run the poll policy expects, from the default run-time model', async () => {
    // Act
    const state = await submitGeneration(submitInput(), depsWith(new FakeDashScope()));

    // Assess: one 1024*1024 image at 40 steps on the large model.
    expect(state.expectedRun).toEqual(
      estimateRun({ model: 'stable-diffusion-3.5-large', size: '1024*1024', steps: 40, n: 1 }),
    );
  });

  it('uses the run-time model it is given', async () => {
    // Prepare
    const runTimeModel = resolveRunTimeModel({ overheadSeconds: 2, spread: 0.1 });

    // Act
    const state = await submitGeneration(submitInput(), depsWith(new FakeDashScope(), { runTimeModel }));

    // Assess
    expect(state.expectedRun).toMatchObject({ overheadSeconds: 2, spread: 0.1 });
  });

  it('schedules the first poll with the poll policy, as a task that may start at once', async () => {
    // Act
    const state = await submitGeneration(submitInput(), depsWith(new FakeDashScope()));

    // Assess
    expect(state.nextPollSeconds).toBe(
      nextPollSeconds({
        status: 'queued',
        pollCount: 0,
        secondsUntilDeadline: DEADLINE_SECONDS,
        expected: state.expectedRun ?? estimateRun(submitInput().request),
        jitter: pollJitter(`${SEED_SUBMIT_ANSWER.output.task_id}:0`),
      }),
    );
  });

  it('polls a small turbo task within a few seconds', async () => {
    // Act
    const state = await submitGeneration(
      submitInput({ prompt: 'a cat', model: 'stable-diffusion-3.5-large-turbo', size: '512*512', steps: 4 }),
      depsWith(new FakeDashScope()),
    );

    // Assess
    expect(state.nextPollSeconds).toBeLessThanOrEqual(2);
  });

  it('returns a state the workflow schema accepts', async () => {
    // Act
    const state = await submitGeneration(submitInput(), depsWith(new FakeDashScope()));

    // Assess
    expect(taskStateSchema.parse(state)).toEqual(state);
  });
});
