import { appendFile, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AdjustableClock } from '../../functions/shared/clock.js';
import { createDashScopeClient, type DashScopeClient } from '../../functions/shared/dashscope/client.js';
import type { SubmitBody } from '../../functions/shared/dashscope/schemas.js';
import { renderPng } from '../../local/dashscope-emulator/png.js';
import { type RunningEmulator, startEmulator } from '../../local/dashscope-emulator/server.js';
import type { TaskPlan } from '../../local/dashscope-emulator/types.js';

const KEY = 'sk-durable-test';

/** One emulator process of a test, and a real DashScope client for it. */
interface Started {
  emulator: RunningEmulator;
  client: DashScopeClient;
}
const DAY_MS = 24 * 60 * 60 * 1000;

/** A small, seeded submit, so the images are known in advance. */
function submitBody(seed: number, n = 1): SubmitBody {
  return {
    model: 'stable-diffusion-3.5-large',
    input: { prompt: 'a lighthouse at dusk' },
    parameters: { size: '512*512', n, steps: 4, cfg: 4.5, seed, shift: 3 },
  };
}

describe('tasks kept in a state file outlive the emulator', () => {
  let dir: string;
  let stateFile: string;
  let clock: AdjustableClock;
  const running: RunningEmulator[] = [];

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'durable-tasks-'));
    // A folder that does not exist yet: the emulator creates it.
    stateFile = path.join(dir, 'emulator', 'tasks.jsonl');
    clock = new AdjustableClock();
  });

  afterEach(async () => {
    await Promise.all(running.splice(0).map((emulator) => emulator.close()));
    await rm(dir, { recursive: true, force: true });
  });

  /** An emulator on the shared clock and state file. */
  async function start(): Promise<Started> {
    const emulator = await startEmulator({ clock, apiKey: KEY, stateFile, submitsPerSecond: 100 });
    running.push(emulator);
    return { emulator, client: createDashScopeClient({ baseUrl: emulator.url, apiKey: async () => KEY }) };
  }

  /** Stops an emulator, as killing `npm start` would. */
  async function stop({ emulator }: Started): Promise<void> {
    running.splice(running.indexOf(emulator), 1);
    await emulator.close();
  }

  /** Submits one task per plan, in order, and returns their ids. */
  async function submitPlanned(started: Started, plans: TaskPlan[]): Promise<string[]> {
    const ids: string[] = [];
    for (const [index, plan] of plans.entries()) {
      started.emulator.control.planNextTask(plan);
      ids.push((await started.client.submit(submitBody(index + 1))).output.task_id);
    }
    return ids;
  }

  async function statuses(client: DashScopeClient, ids: string[]): Promise<string[]> {
    return Promise.all(ids.map(async (id) => (await client.getTask(id)).output.task_status));
  }

  async function journalLines(): Promise<any[]> {
    const text = await readFile(stateFile, 'utf8');
    return text
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line));
  }

  it('answers the same task ids with the status time gives them, as if it had never stopped', async () => {
    const first = await start();
    const ids = await submitPlanned(first, [
      { durationMs: 10_000 },
      { durationMs: 10_000 },
      { durationMs: 10_000 },
    ]);
    const [a = '', b = '', c = ''] = ids;
    expect(await statuses(first.client, ids)).toEqual(['RUNNING', 'PENDING', 'PENDING']);
    const before = first.emulator.control.tasks();
    await stop(first);

    clock.advance(15_000);
    const second = await start();
    expect(second.emulator.control.tasks().map((task) => task.taskId)).toEqual(ids);
    expect(second.emulator.control.skippedJournalLines).toBe(0);
    expect(await statuses(second.client, ids)).toEqual(['SUCCEEDED', 'RUNNING', 'PENDING']);
    const [doneA, runningB] = [
      (await second.client.getTask(a)).output,
      (await second.client.getTask(b)).output,
    ];
    expect(runningB.scheduled_time).toBe(doneA.end_time);
    const after = second.emulator.control.tasks();
    expect(after[0]).toMatchObject({
      submittedAt: before[0]?.submittedAt,
      scheduledAt: before[0]?.scheduledAt,
      endedAt: (before[0]?.scheduledAt ?? 0) + 10_000,
    });
    expect(after[1]?.scheduledAt).toBe(after[0]?.endedAt);

    // A second restart (from the compacted file this time) changes nothing either.
    await stop(second);
    clock.advance(10_000);
    const third = await start();
    expect(await statuses(third.client, ids)).toEqual(['SUCCEEDED', 'SUCCEEDED', 'RUNNING']);
    const [, endedB, runningC] = third.emulator.control.tasks();
    expect(endedB?.scheduledAt).toBe(after[1]?.scheduledAt);
    expect(runningC?.scheduledAt).toBe(endedB?.endedAt);
    expect((await third.client.getTask(c)).output.scheduled_time).toBe(
      (await third.client.getTask(b)).output.end_time,
    );
    // Counters are per process; the tasks are the account's.
    expect(third.emulator.control.tasksCreated).toBe(0);
  });

  it('keeps a task canceled before the restart CANCELED, and it delays no other task', async () => {
    const first = await start();
    const ids = await submitPlanned(first, [
      { durationMs: 10_000 },
      { durationMs: 10_000 },
      { durationMs: 10_000 },
    ]);
    const [, b = ''] = ids;
    await first.client.cancel(b);
    await stop(first);

    clock.advance(12_000);
    const second = await start();
    expect(await statuses(second.client, ids)).toEqual(['SUCCEEDED', 'CANCELED', 'RUNNING']);
    const [endedA, canceledB, runningC] = second.emulator.control.tasks();
    expect(canceledB?.scheduledAt).toBeUndefined();
    expect(runningC?.scheduledAt).toBe(endedA?.endedAt);

    await stop(second);
    const third = await start();
    expect(await statuses(third.client, ids)).toEqual(['SUCCEEDED', 'CANCELED', 'RUNNING']);
    expect(third.emulator.control.tasks()).toEqual([endedA, canceledB, runningC]);
  });

  it('serves the results of a SUCCEEDED task after the restart, through fresh URLs', async () => {
    const first = await start();
    const [id = ''] = await submitPlanned(first, [{ durationMs: 1000 }]);
    clock.advance(2000);
    const done = (await first.client.getTask(id)).output;
    expect(done.task_status).toBe('SUCCEEDED');
    await stop(first);

    const second = await start();
    const again = (await second.client.getTask(id)).output;
    expect(again).toMatchObject({ task_status: 'SUCCEEDED', end_time: done.end_time });
    const [result] = again.results ?? [];
    expect(result && 'url' in result).toBe(true);
    const url = result && 'url' in result ? result.url : '';
    expect(url.startsWith(`${second.emulator.origin}/results/${id}/`)).toBe(true);
    const response = await fetch(url);
    expect(response.status).toBe(200);
    const bytes = Buffer.from(await response.arrayBuffer());
    expect(bytes.equals(await renderPng('a lighthouse at dusk', 1, 512, 512))).toBe(true);
  });

  it('drops expired tasks from the compacted file, and keeps the times they gave the others', async () => {
    const first = await start();
    const [a = '', b = ''] = await submitPlanned(first, [{ durationMs: 10_000 }, { durationMs: 10_000 }]);
    const [runningA] = first.emulator.control.tasks();
    await stop(first);

    // A ended at +10 s and expires now; B started when A ended, and lives 10 s longer.
    clock.advance(DAY_MS + 15_000);
    const second = await start();
    expect((await second.client.getTask(a)).output.task_status).toBe('UNKNOWN');
    expect((await second.client.getTask(b)).output.task_status).toBe('SUCCEEDED');
    expect(second.emulator.control.tasks().map((task) => task.taskId)).toEqual([b]);
    const lines = await journalLines();
    expect(lines.map((line) => [line.op, line.task?.taskId])).toEqual([['add', b]]);
    expect(await readFile(stateFile, 'utf8')).not.toContain(a);
    const [endedB] = second.emulator.control.tasks();
    expect(endedB?.scheduledAt).toBe((runningA?.scheduledAt ?? 0) + 10_000);

    // B's start came from A, which the file no longer holds: it must not move.
    await stop(second);
    const third = await start();
    expect(third.emulator.control.tasks()).toEqual([endedB]);

    clock.advance(10_000);
    const fourth = await start();
    expect(fourth.emulator.control.tasks()).toEqual([]);
    expect(await readFile(stateFile, 'utf8')).toBe('');
  });

  it('keeps a task RUNNING for ever across restarts, and a forget of it starts the next one', async () => {
    const first = await start();
    const ids = await submitPlanned(first, [
      { durationMs: Number.POSITIVE_INFINITY },
      { durationMs: 10_000 },
    ]);
    const [a = ''] = ids;
    await stop(first);

    clock.advance(60 * 60 * 1000);
    const second = await start();
    expect(await statuses(second.client, ids)).toEqual(['RUNNING', 'PENDING']);
    clock.advance(1000);
    expect(second.emulator.control.forgetTask(a)).toBe(true);
    const [startedB] = second.emulator.control.tasks();
    expect(startedB?.scheduledAt).toBeGreaterThan((startedB?.submittedAt ?? 0) + 60 * 60 * 1000);
    await stop(second);

    const third = await start();
    expect(await statuses(third.client, ids)).toEqual(['UNKNOWN', 'RUNNING']);
    expect(third.emulator.control.tasks()).toEqual([startedB]);
  });

  it('replays a forget of the RUNNING task at its time: the next task started then', async () => {
    const first = await start();
    const ids = await submitPlanned(first, [
      { durationMs: Number.POSITIVE_INFINITY },
      { durationMs: 10_000 },
    ]);
    const [a = ''] = ids;
    clock.advance(60 * 60 * 1000);
    expect(first.emulator.control.forgetTask(a)).toBe(true);
    const [startedB] = first.emulator.control.tasks();
    expect(startedB?.status).toBe('RUNNING');
    await stop(first);

    const second = await start();
    expect(await statuses(second.client, ids)).toEqual(['UNKNOWN', 'RUNNING']);
    expect(second.emulator.control.tasks()).toEqual([startedB]);
  });

  it('skips malformed lines and a last line cut by a crash, then writes them out', async () => {
    const first = await start();
    const ids = await submitPlanned(first, [{ durationMs: 10_000 }, { durationMs: 10_000 }]);
    await stop(first);
    const [addA, addB] = (await readFile(stateFile, 'utf8')).split('\n');
    await writeFile(stateFile, [addA, 'not json', '{"op":"add","task":{}}', addB, ''].join('\n'));
    await appendFile(stateFile, '{"op":"cancel","taskId":"');

    const second = await start();
    expect(second.emulator.control.skippedJournalLines).toBe(3);
    expect(second.emulator.control.tasks().map((task) => task.taskId)).toEqual(ids);
    // Appends after a cut line start on a line of their own.
    ids.push((await second.client.submit(submitBody(9))).output.task_id);
    await stop(second);

    const third = await start();
    expect(third.emulator.control.skippedJournalLines).toBe(0);
    expect(third.emulator.control.tasks().map((task) => task.taskId)).toEqual(ids);
    expect(await statuses(third.client, ids)).toEqual(['RUNNING', 'PENDING', 'PENDING']);
  });

  it('empties the state file on reset', async () => {
    const first = await start();
    await submitPlanned(first, [{}, {}]);
    expect(await journalLines()).toHaveLength(2);
    first.emulator.control.reset();
    expect((await stat(stateFile)).size).toBe(0);
    await stop(first);

    const second = await start();
    expect(second.emulator.control.tasks()).toEqual([]);
  });
});
