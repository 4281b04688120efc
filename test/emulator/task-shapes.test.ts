import { describe, expect, it } from 'vitest';
import { formatCstTime } from '../../local/dashscope-emulator/cst-time.js';
import { API_KEY, CST_TIME, createHarness, UUID } from './harness.js';

const TIMEOUT_MESSAGE =
  'An internal timeout error has occured during execution, please try again later or contact service support.';

describe('response shapes of the seed document', () => {
  it('answers a submit with PENDING and a task id', async () => {
    const h = createHarness();
    const answer = await h.submit();
    expect(answer.status).toBe(200);
    expect(Object.keys(answer.body)).toEqual(['output', 'request_id']);
    expect(Object.keys(answer.body.output)).toEqual(['task_status', 'task_id']);
    expect(answer.body.output.task_status).toBe('PENDING');
    expect(answer.body.output.task_id).toMatch(UUID);
    expect(answer.body.request_id).toMatch(UUID);
  });

  it('reports RUNNING with task_metrics while images complete one by one', async () => {
    const h = createHarness();
    // 4 default images on the large model: (400 + 4 × 5000) ms, one image every 5.1 s.
    const taskId = await h.submitTask({ n: 4 });
    h.clock.advance(6000);
    const { status, body } = await h.get(taskId);
    expect(status).toBe(200);
    expect(Object.keys(body)).toEqual(['request_id', 'output']);
    expect(body.output).toEqual({
      task_id: taskId,
      task_status: 'RUNNING',
      submit_time: expect.stringMatching(CST_TIME),
      scheduled_time: expect.stringMatching(CST_TIME),
      task_metrics: { TOTAL: 4, SUCCEEDED: 1, FAILED: 0 },
    });
    h.clock.advance(5100);
    expect((await h.get(taskId)).body.output.task_metrics).toEqual({ TOTAL: 4, SUCCEEDED: 2, FAILED: 0 });
  });

  it('reports SUCCEEDED with one URL per image, times and usage', async () => {
    const h = createHarness();
    const taskId = await h.submitTask({ n: 2, size: '512*512' });
    h.clock.advance(60_000);
    const { body } = await h.get(taskId);
    const [task] = h.control.tasks();
    expect(Object.keys(body)).toEqual(['request_id', 'output', 'usage']);
    expect(body.output).toEqual({
      task_id: taskId,
      task_status: 'SUCCEEDED',
      submit_time: formatCstTime(task?.submittedAt ?? 0),
      scheduled_time: formatCstTime(task?.scheduledAt ?? 0),
      end_time: formatCstTime((task?.scheduledAt ?? 0) + (task?.durationMs ?? 0)),
      results: [{ url: expect.stringContaining('/results/') }, { url: expect.stringContaining('/results/') }],
      task_metrics: { TOTAL: 2, SUCCEEDED: 2, FAILED: 0 },
    });
    expect(body.usage).toEqual({ image_count: 2 });
    expect(body.output.results[0].url).not.toBe(body.output.results[1].url);
  });

  it("reports a partial failure as SUCCEEDED with the failed image's error", async () => {
    const h = createHarness();
    h.control.planNextTask({ failImages: [1] });
    const taskId = await h.submitTask({ n: 2 });
    h.clock.advance(60_000);
    const { body } = await h.get(taskId);
    expect(body.output.task_status).toBe('SUCCEEDED');
    expect(body.output.results).toEqual([
      { url: expect.stringMatching(/^http:\/\/localhost\/results\//) },
      { code: 'InternalError.Timeout', message: TIMEOUT_MESSAGE },
    ]);
    expect(body.output.task_metrics).toEqual({ TOTAL: 2, SUCCEEDED: 1, FAILED: 1 });
    expect(body.usage).toEqual({ image_count: 1 });
  });

  it("leaves planned images out of a SUCCEEDED task's results, with no error entry, while counting them", async () => {
    const h = createHarness();
    h.control.planNextTask({ omitResults: [1] });
    const taskId = await h.submitTask({ n: 2 });
    h.clock.advance(60_000);
    const { body } = await h.get(taskId);
    expect(body.output.task_status).toBe('SUCCEEDED');
    expect(body.output.results).toEqual([{ url: expect.stringMatching(/^http:\/\/localhost\/results\//) }]);
    expect(body.output.task_metrics).toEqual({ TOTAL: 2, SUCCEEDED: 2, FAILED: 0 });
    expect(body.usage).toEqual({ image_count: 2 });
  });

  it('counts failed images in task_metrics while RUNNING', async () => {
    const h = createHarness();
    h.control.planNextTask({ failImages: [0], durationMs: 4000 });
    const taskId = await h.submitTask({ n: 4 });
    h.clock.advance(1500);
    expect((await h.get(taskId)).body.output.task_metrics).toEqual({ TOTAL: 4, SUCCEEDED: 0, FAILED: 1 });
    h.clock.advance(1000);
    expect((await h.get(taskId)).body.output.task_metrics).toEqual({ TOTAL: 4, SUCCEEDED: 1, FAILED: 1 });
  });

  it('reports a planned failure as FAILED with code and message, no results and no usage', async () => {
    const h = createHarness();
    h.control.planNextTask({ fail: { code: 'InvalidParameter', message: 'The image source is invalid.' } });
    const taskId = await h.submitTask({ n: 4 });
    h.clock.advance(60_000);
    const { status, body } = await h.get(taskId);
    expect(status).toBe(200);
    expect(Object.keys(body)).toEqual(['request_id', 'output']);
    expect(body.output).toEqual({
      task_id: taskId,
      task_status: 'FAILED',
      submit_time: expect.stringMatching(CST_TIME),
      scheduled_time: expect.stringMatching(CST_TIME),
      end_time: expect.stringMatching(CST_TIME),
      code: 'InvalidParameter',
      message: 'The image source is invalid.',
      task_metrics: { TOTAL: 4, SUCCEEDED: 0, FAILED: 4 },
    });
  });

  it('fails the task when every image fails', async () => {
    const h = createHarness();
    h.control.planNextTask({ failImages: [0, 1] });
    const taskId = await h.submitTask({ n: 2 });
    h.clock.advance(60_000);
    const { output } = (await h.get(taskId)).body;
    expect(output).toMatchObject({
      task_status: 'FAILED',
      code: 'InternalError.Timeout',
      message: TIMEOUT_MESSAGE,
      task_metrics: { TOTAL: 2, SUCCEEDED: 0, FAILED: 2 },
    });
    expect(output.results).toBeUndefined();
  });

  it('answers errors as {code, message, request_id}', async () => {
    const h = createHarness();
    const answer = await h.call('/tasks/whatever', { headers: { Authorization: 'Bearer nope' } });
    expect(answer.status).toBe(401);
    expect(Object.keys(answer.body)).toEqual(['code', 'message', 'request_id']);
    expect(answer.body).toEqual({
      code: 'InvalidApiKey',
      message: 'Invalid API-key provided.',
      request_id: expect.stringMatching(UUID),
    });
  });

  it('answers UNKNOWN for a task id it never issued', async () => {
    const h = createHarness();
    const { status, body } = await h.get('86ecf553-d340-4e21-af6e-a0c6a421c010');
    expect(status).toBe(200);
    expect(body).toEqual({
      request_id: expect.stringMatching(UUID),
      output: { task_id: '86ecf553-d340-4e21-af6e-a0c6a421c010', task_status: 'UNKNOWN' },
    });
  });

  it('keys requests on the configured API key only', async () => {
    const h = createHarness();
    const ok = await h.call('/tasks/x', { headers: { Authorization: `Bearer ${API_KEY}` } });
    expect(ok.status).toBe(200);
    const missing = await h.call('/tasks/x');
    expect(missing.status).toBe(401);
  });
});
