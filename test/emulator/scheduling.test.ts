import { describe, expect, it } from 'vitest';
import { createHarness } from './harness.js';

const DAY_MS = 24 * 60 * 60 * 1000;

describe('one runner per account, first in first out', () => {
  it('keeps the second task PENDING while the first runs, then starts it when the first ends', async () => {
    const h = createHarness();
    const first = await h.submitTask();
    const second = await h.submitTask();
    expect((await h.get(first)).body.output.task_status).toBe('RUNNING');
    const pending = (await h.get(second)).body.output;
    expect(pending).toEqual({ task_id: second, task_status: 'PENDING', submit_time: expect.any(String) });

    h.clock.advance(6000);
    const done = (await h.get(first)).body.output;
    const running = (await h.get(second)).body.output;
    expect(done.task_status).toBe('SUCCEEDED');
    expect(running.task_status).toBe('RUNNING');
    expect(running.scheduled_time).toBe(done.end_time);
    expect(running.scheduled_time > running.submit_time).toBe(true);
  });

  it('replays every start and end hidden in one big clock jump', async () => {
    const h = createHarness();
    await h.submitTask({ n: 2 });
    await h.submitTask();
    h.clock.advance(1000);
    await h.submitTask({ size: '512*512' });
    h.clock.advance(10 * 60 * 1000);

    const tasks = h.control.tasks();
    expect(tasks.map((task) => task.status)).toEqual(['SUCCEEDED', 'SUCCEEDED', 'SUCCEEDED']);
    const [a, b, c] = tasks as [(typeof tasks)[0], (typeof tasks)[0], (typeof tasks)[0]];
    expect(a.scheduledAt).toBe(a.submittedAt);
    expect(b.scheduledAt).toBe(a.endedAt);
    expect(c.scheduledAt).toBe(b.endedAt);
    expect(c.endedAt).toBe((c.scheduledAt ?? 0) + c.durationMs);
  });

  it('starts a task on submit when the runner is idle', async () => {
    const h = createHarness();
    await h.submitTask();
    h.clock.advance(60_000);
    const late = await h.submitTask();
    const task = h.control.tasks().find((t) => t.taskId === late);
    expect(task?.status).toBe('RUNNING');
    expect(task?.scheduledAt).toBe(task?.submittedAt);
  });
});

describe('cancel', () => {
  it('cancels a PENDING task, which then never runs', async () => {
    const h = createHarness();
    const first = await h.submitTask();
    const second = await h.submitTask();
    h.clock.advance(1000);
    const third = await h.submitTask();

    const answer = await h.cancel(second);
    expect(answer.status).toBe(200);
    expect(Object.keys(answer.body)).toEqual(['request_id']);
    const canceled = (await h.get(second)).body.output;
    expect(canceled).toEqual({
      task_id: second,
      task_status: 'CANCELED',
      submit_time: expect.any(String),
      end_time: expect.any(String),
    });

    h.clock.advance(5000);
    const firstEnd = (await h.get(first)).body.output.end_time;
    expect((await h.get(third)).body.output).toMatchObject({
      task_status: 'RUNNING',
      scheduled_time: firstEnd,
    });
    expect((await h.get(second)).body.output.task_status).toBe('CANCELED');
  });

  it('refuses to cancel a RUNNING, finished or unknown task with UnsupportedOperation', async () => {
    const h = createHarness();
    const running = await h.submitTask();
    const refusal = {
      code: 'UnsupportedOperation',
      message: 'Failed to cancel the task, please confirm if the task status is PENDING.',
      request_id: expect.any(String),
    };
    expect(await h.cancel(running)).toEqual({ status: 400, body: refusal });
    h.clock.advance(60_000);
    expect(await h.cancel(running)).toEqual({ status: 400, body: refusal });
    expect(await h.cancel('no-such-task')).toEqual({ status: 400, body: refusal });
    expect((await h.get(running)).body.output.task_status).toBe('SUCCEEDED');
  });
});

describe('expiry', () => {
  it('forgets a finished task 24 h after it ended', async () => {
    const h = createHarness();
    const taskId = await h.submitTask();
    h.clock.advance(DAY_MS);
    expect((await h.get(taskId)).body.output.task_status).toBe('SUCCEEDED');
    h.clock.advance(6000);
    expect((await h.get(taskId)).body).toEqual({
      request_id: expect.any(String),
      output: { task_id: taskId, task_status: 'UNKNOWN' },
    });
    expect(h.control.tasks()).toEqual([]);
    expect((await h.list()).body.total).toBe(0);
  });

  it('drops a task that waited in the queue for its whole lifetime', async () => {
    const h = createHarness({ resultTtlMs: 60_000 });
    h.control.planNextTask({ durationMs: 120_000 });
    const long = await h.submitTask();
    const starved = await h.submitTask();
    h.clock.advance(61_000);
    expect((await h.get(starved)).body.output.task_status).toBe('UNKNOWN');
    expect((await h.get(long)).body.output.task_status).toBe('RUNNING');
    h.clock.advance(60_000);
    expect((await h.get(long)).body.output.task_status).toBe('SUCCEEDED');
  });
});

describe('rate limits', () => {
  it('throttles the 3rd submit within a second and accepts it once the second has passed', async () => {
    const h = createHarness();
    await h.submitTask();
    await h.submitTask();
    const third = await h.submit();
    expect(third.status).toBe(429);
    expect(third.body).toEqual({
      code: 'Throttling.RateQuota',
      message: 'Requests rate limit exceeded, please try again later.',
      request_id: expect.any(String),
    });
    h.clock.advance(1000);
    expect((await h.submit()).status).toBe(200);
    expect(h.control.counts).toEqual({ submits: 4, queries: 0, throttled: 1 });
    expect(h.control.tasks()).toHaveLength(3);
  });

  it('does not charge refused submits to the quota', async () => {
    const h = createHarness();
    expect((await h.submit({ model: 'stable-diffusion-3.5-large' })).status).toBe(400);
    expect((await h.submit({ model: 'stable-diffusion-3.5-large' })).status).toBe(400);
    await h.submitTask();
    await h.submitTask();
  });

  it('shares 20 calls per second between query, cancel and list', async () => {
    const h = createHarness();
    const taskId = await h.submitTask();
    for (let i = 0; i < 18; i += 1) expect((await h.get(taskId)).status).toBe(200);
    expect((await h.list()).status).toBe(200);
    expect((await h.cancel(taskId)).status).toBe(400);
    const throttled = await h.get(taskId);
    expect(throttled.status).toBe(429);
    expect(throttled.body.code).toBe('Throttling.RateQuota');
    expect((await h.list()).status).toBe(429);
    h.clock.advance(1000);
    expect((await h.get(taskId)).status).toBe(200);
    expect(h.control.counts).toEqual({ submits: 1, queries: 23, throttled: 2 });
  });
});

describe('list', () => {
  it('lists newest first with paging and filters', async () => {
    const h = createHarness();
    const first = await h.submitTask();
    const second = await h.submitTask({}, 'stable-diffusion-3.5-large-turbo');
    h.clock.advance(1000);
    const third = await h.submitTask();

    const all = (await h.list()).body;
    expect(all).toMatchObject({ total: 3, total_page: 1, page_no: 1, page_size: 10 });
    expect(all.data.map((entry: { task_id: string }) => entry.task_id)).toEqual([third, second, first]);
    expect(all.data[2]).toEqual({
      task_id: first,
      status: 'RUNNING',
      model_name: 'stable-diffusion-3.5-large',
      gmt_create: expect.any(Number),
      start_time: expect.any(Number),
      request_id: expect.any(String),
    });
    expect(all.data[0].start_time).toBeUndefined();

    const paged = (await h.list('?page_no=2&page_size=2')).body;
    expect(paged).toMatchObject({ total: 3, total_page: 2, page_no: 2, page_size: 2 });
    expect(paged.data.map((entry: { task_id: string }) => entry.task_id)).toEqual([first]);

    const turbo = (await h.list('?model_name=stable-diffusion-3.5-large-turbo')).body;
    expect(turbo.data.map((entry: { task_id: string }) => entry.task_id)).toEqual([second]);
    const pending = (await h.list('?status=PENDING')).body;
    expect(pending.total).toBe(2);
  });

  it('filters on the creation time window, in CST', async () => {
    const h = createHarness();
    await h.submitTask();
    const created = h.control.tasks()[0]?.submittedAt ?? 0;
    const compact = (ms: number) => new Date(ms + 8 * 3600_000).toISOString().replace(/\D/g, '').slice(0, 14);
    const inside = await h.list(`?start_time=${compact(created - 60_000)}&end_time=${compact(created)}`);
    expect(inside.body.total).toBe(1);
    const before = await h.list(
      `?start_time=${compact(created - 120_000)}&end_time=${compact(created - 60_000)}`,
    );
    expect(before.body.total).toBe(0);
  });

  it('refuses bad parameters, naming them', async () => {
    const h = createHarness();
    for (const [query, field] of [
      ['?start_time=2024-06-14', 'start_time'],
      ['?end_time=20240231000000', 'end_time'],
      ['?page_size=0', 'page_size'],
      ['?page_no=x', 'page_no'],
      ['?status=DONE', 'status'],
      ['?start_time=20240601000000&end_time=20240603000000', '24 hours'],
    ] as const) {
      const answer = await h.list(query);
      expect(answer.status).toBe(400);
      expect(answer.body.code).toBe('InvalidParameter');
      expect(answer.body.message).toContain(field);
    }
  });
});

describe('fault injection and reset', () => {
  it('answers the injected fault the given number of times, after authentication', async () => {
    const h = createHarness();
    h.control.injectFault('submit', { status: 500, code: 'InternalError' }, 2);
    const unauthenticated = await h.submit(undefined, { Authorization: 'Bearer wrong' });
    expect(unauthenticated.status).toBe(401);
    for (let i = 0; i < 2; i += 1) {
      const answer = await h.submit(undefined, { 'X-DashScope-Async': '' });
      expect(answer).toEqual({
        status: 500,
        body: {
          code: 'InternalError',
          message: 'An internal error has occured, please try again later or contact service support.',
          request_id: expect.any(String),
        },
      });
    }
    expect((await h.submit()).status).toBe(200);
  });

  it('injects into get, cancel and list separately, with a custom message', async () => {
    const h = createHarness();
    const taskId = await h.submitTask();
    h.control.injectFault('get', { status: 503, code: 'ModelUnavailable', message: 'busy' });
    h.control.injectFault('list', { status: 429, code: 'Throttling', message: 'slow down' });
    h.control.injectFault('cancel', { status: 500, code: 'SystemError', message: 'oops' });
    expect(await h.get(taskId)).toEqual({
      status: 503,
      body: { code: 'ModelUnavailable', message: 'busy', request_id: expect.any(String) },
    });
    expect((await h.list()).body.code).toBe('Throttling');
    expect((await h.cancel(taskId)).body.code).toBe('SystemError');
    expect((await h.get(taskId)).status).toBe(200);
    expect((await h.list()).status).toBe(200);
    expect(h.control.counts.throttled).toBe(0);
  });

  it('reset forgets tasks, plans, faults and counters', async () => {
    const h = createHarness();
    await h.submitTask();
    h.control.planNextTask({ fail: { code: 'X', message: 'y' } });
    h.control.injectFault('get', { status: 500, code: 'InternalError' });
    h.control.reset();
    expect(h.control.tasks()).toEqual([]);
    expect(h.control.counts).toEqual({ submits: 0, queries: 0, throttled: 0 });
    const taskId = await h.submitTask();
    h.clock.advance(60_000);
    const answer = await h.get(taskId);
    expect(answer.status).toBe(200);
    expect(answer.body.output.task_status).toBe('SUCCEEDED');
  });

  it('refuses malformed plans and fault counts at the call', () => {
    const h = createHarness();
    expect(() => h.control.planNextTask({ durationMs: -1 })).toThrow(RangeError);
    expect(() => h.control.injectFault('get', { status: 500, code: 'InternalError' }, 0)).toThrow(RangeError);
  });
});
