import { describe, expect, it } from 'vitest';
import type { DashScopeClient, ListTasksQuery } from '../../functions/shared/dashscope/client.js';
import type { ListTasksResponse } from '../../functions/shared/dashscope/schemas.js';
import { DashScopeTimeoutError, DashScopeUnavailableError } from '../../functions/shared/errors.js';
import { generationRequestSchema } from '../../functions/shared/generation-request.js';
import { silentLogger } from '../../functions/shared/logger.js';
import { findOrphan, submitAdmitted } from '../../functions/submit/adopt.js';
import { MemoryAdmissionQueue } from '../../local/memory-admission.js';

const NOW = Date.UTC(2026, 10, 30, 12, 0, 0);
const MODEL = 'stable-diffusion-3.5-large';
type Listed = ListTasksResponse['data'][number];
const listed = (taskId: string, status: Listed['status'] = 'PENDING', model = MODEL): Listed => ({
  task_id: taskId,
  status,
  model_name: model,
  gmt_create: NOW,
});

/** A DashScope whose list endpoint answers `rows`, and whose submits are counted (and may fail). */
function dashscope(rows: Listed[] | Error, submitError?: Error) {
  const calls = { submits: [] as number[], lists: [] as ListTasksQuery[] };
  const client: DashScopeClient = {
    async submit(body) {
      calls.submits.push(body.parameters.seed as number);
      if (submitError) throw submitError;
      return { request_id: 'req-submit', output: { task_id: 'task-new', task_status: 'PENDING' } };
    },
    async getTask() {
      throw new Error('not used');
    },
    async cancel() {
      throw new Error('not used');
    },
    async listTasks(query) {
      calls.lists.push(query);
      if (rows instanceof Error) throw rows;
      return { request_id: 'req-list', data: rows, total: rows.length };
    },
  };
  return { client, calls };
}

const deps = (client: DashScopeClient) => ({
  dashscope: client,
  clock: { now: () => NOW },
  logger: silentLogger,
});

describe('findOrphan', () => {
  const search = { attemptAt: NOW - 35_000, model: MODEL, owned: new Set(['ours']) };

  it('finds the one task of the window that none of our generations owns, whatever its status', async () => {
    const { client } = dashscope([listed('ours', 'RUNNING'), listed('orphan', 'SUCCEEDED')]);

    expect(await findOrphan(search, deps(client))).toEqual({
      taskId: 'orphan',
      status: 'SUCCEEDED',
      requestId: 'req-list',
    });
  });

  it('asks for the model’s tasks created since just before the attempt', async () => {
    const { client, calls } = dashscope([]);

    await findOrphan(search, deps(client));

    expect(calls.lists).toEqual([
      expect.objectContaining({
        modelName: MODEL,
        pageSize: 100,
        startTime: expect.stringMatching(/^\d{14}$/),
      }),
    ]);
  });

  it('adopts nothing when two tasks could be it (another client shares the account)', async () => {
    const { client } = dashscope([listed('a'), listed('b')]);

    expect(await findOrphan(search, deps(client))).toBeUndefined();
  });

  it('adopts nothing when every task of the window is ours', async () => {
    const { client } = dashscope([listed('ours')]);

    expect(await findOrphan(search, deps(client))).toBeUndefined();
  });

  it('adopts nothing, and does not throw, when the listing fails', async () => {
    const { client } = dashscope(new DashScopeUnavailableError('503'));

    expect(await findOrphan(search, deps(client))).toBeUndefined();
  });
});

describe('submitAdmitted', () => {
  const request = generationRequestSchema.parse({ prompt: 'an owl' });
  const input = { id: 'gen-1', request };
  const submitDeps = (client: DashScopeClient, queue: MemoryAdmissionQueue) => ({
    ...deps(client),
    deadlineSeconds: 3600,
    randomSeed: () => 1234,
    queue,
  });

  async function grantedQueue() {
    const queue = new MemoryAdmissionQueue();
    await queue.enqueue({
      id: 'gen-1',
      lane: 'batch',
      enqueuedAt: NOW - 60_000,
      expectedRunSeconds: 20,
      token: 't',
    });
    await queue.grant('gen-1', 'default', NOW - 50_000);
    return queue;
  }

  it('notes the attempt and its seed on the slot before submitting', async () => {
    const queue = await grantedQueue();
    const { client } = dashscope([], new DashScopeTimeoutError('no answer'));

    await expect(submitAdmitted(input, submitDeps(client, queue))).rejects.toThrow(DashScopeTimeoutError);

    expect(await queue.get('gen-1')).toMatchObject({ submitAttemptAt: NOW, submitSeed: 1234 });
  });

  it('carries on with the task its slot notes when an earlier invocation created it, and submits nothing', async () => {
    const queue = await grantedQueue();
    const submittedAt = NOW - 20_000;
    await queue.note('gen-1', { submitAttemptAt: submittedAt - 100, submitSeed: 555 });
    await queue.note('gen-1', { submittedAt, taskId: 'task-earlier' });
    const { client, calls } = dashscope([listed('task-earlier', 'RUNNING')]);

    const { task, adopted } = await submitAdmitted(input, submitDeps(client, queue));

    expect(adopted).toBe(true);
    expect(task).toMatchObject({
      taskId: 'task-earlier',
      seed: 555,
      submittedAt: new Date(submittedAt).toISOString(),
      deadline: new Date(submittedAt + 3600 * 1000).toISOString(),
    });
    expect(calls.submits).toEqual([]);
    expect(calls.lists).toEqual([]);
  });

  it('adopts the orphan on the retry after a lost answer, with the first attempt’s seed, and submits nothing', async () => {
    const queue = await grantedQueue();
    await queue.note('gen-1', { submitAttemptAt: NOW - 35_000, submitSeed: 777 });
    const { client, calls } = dashscope([listed('orphan')]);

    const { task, adopted } = await submitAdmitted(input, submitDeps(client, queue));

    expect(adopted).toBe(true);
    expect(task).toMatchObject({ taskId: 'orphan', seed: 777, status: 'queued' });
    expect(calls.submits).toEqual([]);
  });

  it('never adopts a task this deployment created on the account', async () => {
    const queue = await grantedQueue();
    await queue.note('gen-1', { submitAttemptAt: NOW - 35_000, submitSeed: 777 });
    await queue.recordTask('default', 'someone-elses-of-ours', NOW - 20_000);
    const { client, calls } = dashscope([listed('someone-elses-of-ours', 'SUCCEEDED')]);

    const { task, adopted } = await submitAdmitted(input, submitDeps(client, queue));

    expect(adopted).toBe(false);
    expect(task.taskId).toBe('task-new');
    expect(calls.submits).toEqual([777]);
  });

  it('submits again rather than adopt while another slot of the account has a submit in flight', async () => {
    const queue = await grantedQueue();
    await queue.note('gen-1', { submitAttemptAt: NOW - 35_000, submitSeed: 777 });
    await queue.enqueue({
      id: 'gen-2',
      lane: 'batch',
      enqueuedAt: NOW - 40_000,
      expectedRunSeconds: 20,
      token: 'u',
    });
    await queue.grant('gen-2', 'default', NOW - 30_000);
    await queue.note('gen-2', { submitAttemptAt: NOW - 1000 });
    const { client, calls } = dashscope([listed('orphan')]);

    const { adopted } = await submitAdmitted(input, submitDeps(client, queue));

    expect(adopted).toBe(false);
    expect(calls.lists).toEqual([]);
    expect(calls.submits).toEqual([777]);
  });

  it('submits on a first attempt without looking for an orphan', async () => {
    const queue = await grantedQueue();
    const { client, calls } = dashscope([listed('orphan')]);

    const { adopted } = await submitAdmitted(input, submitDeps(client, queue));

    expect(adopted).toBe(false);
    expect(calls.lists).toEqual([]);
  });
});
