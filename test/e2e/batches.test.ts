import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BatchView } from '../../functions/api/batches.js';
import { DETAIL_TYPE } from '../../functions/shared/events.js';
import { startTestApi, type TestApi } from '../support/local-api.js';
import { closeServer, listenOnLoopback } from '../support/loopback.js';
import { waitFor } from '../support/wait-for.js';

/**
 * Batches end to end, on the local API as `npm start` serves it: the synthesized workflow, the
 * trigger reading request files from s3rver, the emulator, dynalite. A request file and a list
 * sent to `POST /v1/batches` are each one batch, counted, completed once with its results file,
 * its event and its webhook; a cancel takes its waiting lines out before DashScope sees them.
 */

let test: TestApi;
let receiver: Server;
let receiverUrl: string;
const hooks: { headers: IncomingHttpHeaders; body: string }[] = [];

beforeAll(async () => {
  test = await startTestApi('batches-');
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => {
      body += chunk;
    });
    req.on('end', () => {
      hooks.push({ headers: req.headers, body });
      res.writeHead(204).end();
    });
  });
  receiverUrl = await listenOnLoopback(receiver);
  // Synthesizing the stack and starting its parts take minutes when every core is busy.
}, 300_000);

afterAll(async () => {
  await closeServer(receiver);
  await test?.close();
});

const api = (route: string, init?: RequestInit) => fetch(`${test.api.url}${route}`, init);
const getBatch = async (id: string) => (await (await api(`/v1/batches/${id}`)).json()) as BatchView;
const ended = (batch: BatchView) => batch.status === 'completed' || batch.status === 'cancelled';

async function readObject(key: string): Promise<string> {
  const object = await test.api.s3.client.send(
    new GetObjectCommand({ Bucket: test.api.s3.bucket, Key: key }),
  );
  return (await object.Body?.transformToString()) ?? '';
}

const batchEvents = (id: string) =>
  test.api.events.events.filter(
    (event) => event['detail-type'] === DETAIL_TYPE.batchCompleted && event.detail.id === id,
  );

describe('batches', () => {
  it('makes a request file with an invalid line one batch: counted, completed once, its results and report written', async () => {
    const key = 'requests/catalogue.jsonl';
    const body = [
      JSON.stringify({ prompt: 'a red chair', size: '512*512' }),
      JSON.stringify({ prompt: '', size: '512*512' }),
      JSON.stringify({ prompt: 'a blue lamp', size: '512*512', n: 2 }),
    ].join('\n');
    await test.api.s3.client.send(new PutObjectCommand({ Bucket: test.api.s3.bucket, Key: key, Body: body }));
    const report = await waitFor(
      async () => {
        const text = await readObject(`${key}.result`).catch(() => undefined);
        return text ? (JSON.parse(text) as { batch?: { id: string } }) : undefined;
      },
      { what: 'the trigger’s report of the request file', timeoutMs: 120_000 },
    );
    const id = report.batch?.id as string;
    expect(id).toMatch(/^file-[\w-]{40}$/);

    const done = await waitFor(
      async () => {
        const batch = await getBatch(id);
        return ended(batch) ? batch : undefined;
      },
      { what: 'the request file’s batch to end', timeoutMs: 300_000 },
    );
    expect(done).toMatchObject({
      status: 'completed',
      source: 'request-file',
      file: { key },
      counts: {
        total: 3,
        rejected: 1,
        waiting: 0,
        running: 0,
        succeeded: 2,
        partial: 0,
        failed: 0,
        canceled: 0,
      },
    });
    expect(done.completedAt).toBeDefined();

    const results = (await readObject(`batches/${id}/results.jsonl`))
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(results).toEqual([
      expect.objectContaining({ line: 1, id: `${id}-1`, status: 'succeeded', images: [expect.any(String)] }),
      expect.objectContaining({
        line: 2,
        status: 'rejected',
        error: expect.objectContaining({ type: 'invalid_request' }),
      }),
      expect.objectContaining({
        line: 3,
        id: `${id}-3`,
        status: 'succeeded',
        seeds: [expect.any(Number), expect.any(Number)],
      }),
    ]);

    // The report is brought up to the end: each line's outcome and the batch's.
    const final = await waitFor(
      async () => {
        const text = JSON.parse(await readObject(`${key}.result`)) as {
          batch: { status?: string; counts?: unknown };
          results: { line: number; outcome?: { status: string } }[];
        };
        return text.batch.status ? text : undefined;
      },
      { what: 'the report to show the batch’s end', timeoutMs: 60_000 },
    );
    expect(final.batch).toMatchObject({ id, status: 'completed', counts: done.counts });
    expect(final.results.map((line) => line.outcome?.status)).toEqual(['succeeded', undefined, 'succeeded']);

    const link = (await (await api(`/v1/batches/${id}/results`)).json()) as { url: string };
    expect(await (await fetch(link.url)).text()).toBe(await readObject(`batches/${id}/results.jsonl`));
    expect(batchEvents(id)).toHaveLength(1);
  });

  it('completes a batch sent to the API once: its event and its signed webhook', async () => {
    const created = await api('/v1/batches', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        requests: [
          { prompt: 'a cat', size: '512*512' },
          { prompt: 'a dog', size: '512*512' },
        ],
        webhook_url: `${receiverUrl}/batch-hook`,
        metadata: { team: 'catalogue' },
      }),
    });
    expect(created.status).toBe(202);
    const { id } = (await created.json()) as BatchView;

    const done = await waitFor(
      async () => {
        const batch = await getBatch(id);
        return ended(batch) ? batch : undefined;
      },
      { what: 'the API batch to end', timeoutMs: 300_000 },
    );
    expect(done).toMatchObject({ status: 'completed', source: 'api', metadata: { team: 'catalogue' } });
    expect(done.counts).toMatchObject({ total: 2, succeeded: 2 });

    const hook = await waitFor(() => hooks.find((each) => each.body.includes(id)), {
      what: 'the batch.completed webhook',
      timeoutMs: 60_000,
    });
    const payload = JSON.parse(hook.body) as {
      type: string;
      data: { id: string; counts: unknown; resultsKey: string };
    };
    expect(payload).toMatchObject({ type: 'batch.completed', data: { id, counts: done.counts } });
    expect(hook.headers['webhook-signature']).toMatch(/^v1,/);
    expect(hooks.filter((each) => each.body.includes(id))).toHaveLength(1);
    expect(batchEvents(id)).toHaveLength(1);
    // The webhook URL is never shown.
    expect(JSON.stringify(done)).not.toContain('batch-hook');
  });

  it('cancels a batch while one line runs and the others wait: no task is created for them after', async () => {
    const control = test.api.emulator?.control;
    if (!control) throw new Error('the test API runs the emulator');
    const tasksBefore = control.tasks().length;
    control.planNextTask({ durationMs: Number.POSITIVE_INFINITY });
    const created = await api('/v1/batches', {
      method: 'POST',
      headers: { 'content-type': 'application/x-ndjson' },
      body: ['one', 'two', 'three', 'four']
        .map((prompt) => JSON.stringify({ prompt, size: '512*512' }))
        .join('\n'),
    });
    expect(created.status).toBe(202);
    const { id } = (await created.json()) as BatchView;
    await waitFor(
      async () => {
        const batch = await getBatch(id);
        return batch.counts.running === 1 && batch.counts.waiting === 3 ? batch : undefined;
      },
      { what: 'one line to run and three to wait', timeoutMs: 300_000 },
    );
    await waitFor(() => control.tasks().slice(tasksBefore)[0]?.status === 'RUNNING', {
      what: 'the first line to run at DashScope',
      timeoutMs: 120_000,
    });

    // Depth 2: the second line holds the account's other slot, its task PENDING at DashScope.
    const tasksAtCancel = control.tasks().length - tasksBefore;
    expect(tasksAtCancel).toBeLessThanOrEqual(2);
    const cancel = await api(`/v1/batches/${id}/cancel`, { method: 'POST' });
    expect(cancel.status).toBe(202);
    expect(((await cancel.json()) as BatchView).status).toMatch(/^cancell/);

    const done = await waitFor(
      async () => {
        const batch = await getBatch(id);
        return ended(batch) ? batch : undefined;
      },
      { what: 'the cancelled batch to end', timeoutMs: 300_000 },
    );
    expect(done.status).toBe('cancelled');
    expect(done.counts).toMatchObject({ total: 4, waiting: 0, running: 0, canceled: 4 });
    // No line that waited in the queue reached DashScope; a PENDING task there was cancelled.
    const tasks = control.tasks().slice(tasksBefore);
    expect(tasks).toHaveLength(tasksAtCancel);
    expect(tasks.slice(1).map((task) => task.status)).toEqual(tasks.slice(1).map(() => 'CANCELED'));
    const event = batchEvents(id);
    expect(event).toHaveLength(1);
    expect(event[0]?.detail).toMatchObject({ status: 'cancelled' });
  });
});
