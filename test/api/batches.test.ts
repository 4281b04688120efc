import type { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import type * as z from 'zod';
import { MAX_BATCH_BODY_BYTES } from '../../functions/api/batch-routes.js';
import type { BatchView } from '../../functions/api/batches.js';
import { encodeLineCursor } from '../../functions/api/cursor.js';
import type { batchViewSchema } from '../../functions/api/schemas.js';
import { idempotentBatchId, MAX_BATCH_LINES, rejectedKeyOf } from '../../functions/shared/batch.js';
import { generationRequestSchema } from '../../functions/shared/generation-request.js';
import { taskUpdate } from '../../functions/shared/index-updates.js';
import {
  type BatchWorld,
  BUCKET,
  batchWorld,
  endGeneration,
  finishBatch,
  requestsKeyOf,
  startBatchFile,
} from './batch-fixtures.js';
import { apiOver, taskState, URL_EXPIRES_AT } from './fixtures.js';

// The schema the document shows is the view the code builds.
const viewMatchesSchema = (view: BatchView): z.infer<typeof batchViewSchema> => view;
void viewMatchesSchema;

const NOW = Date.parse('2026-03-01T12:34:56.789Z');
const TOKEN = 'local-token-123';
const JSON_TYPE = { 'Content-Type': 'application/json' };
const NDJSON_TYPE = { 'Content-Type': 'application/x-ndjson' };

interface ErrorJson {
  error: { type: string; message: string; details?: { field: string; message: string }[] };
}
interface Created extends BatchView {
  rejected: { line: number; error: { type: string; message: string; details?: { field: string }[] } }[];
}
interface GenerationPage {
  data: { id: string; status: string; request?: { prompt: string; priority?: string } }[];
  nextCursor?: string;
}

const errorOf = async (response: Response) => ((await response.json()) as ErrorJson).error;
const fieldsOf = async (response: Response) =>
  [...new Set(((await errorOf(response)).details ?? []).map((detail) => detail.field))].sort();

function postJson(app: Hono, body: unknown, headers: Record<string, string> = {}) {
  return app.request('/v1/batches', {
    method: 'POST',
    headers: { ...JSON_TYPE, ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

function postNdjson(app: Hono, text: string, query = '', headers: Record<string, string> = {}) {
  return app.request(`/v1/batches${query}`, {
    method: 'POST',
    headers: { ...NDJSON_TYPE, ...headers },
    body: text,
  });
}

/** Creates a batch of `requests` (JSON form) and returns its answer. */
async function create(world: BatchWorld, requests: unknown[], extra: Record<string, unknown> = {}) {
  const response = await postJson(world.app, { requests, ...extra });
  expect(response.status).toBe(202);
  return (await response.json()) as Created;
}

const get = async <T>(app: Hono, path: string) => {
  const response = await app.request(path);
  expect(response.status).toBe(200);
  return (await response.json()) as T;
};

const prompts = (count: number) => Array.from({ length: count }, (_, i) => ({ prompt: `fox ${i + 1}` }));

/** What the requests file holds: each line parsed, a blank one as null. */
function requestsFile(world: BatchWorld, batchId: string): (Record<string, unknown> | null)[] {
  const file = world.objects.get(requestsKeyOf(batchId));
  if (!file) throw new Error('no requests file');
  expect(file.contentType).toBe('application/x-ndjson');
  expect(file.body.endsWith('\n')).toBe(true);
  return file.body
    .slice(0, -1)
    .split('\n')
    .map((line) => (line === '' ? null : (JSON.parse(line) as Record<string, unknown>)));
}

const ZERO = { waiting: 0, running: 0, succeeded: 0, partial: 0, failed: 0, canceled: 0 };

describe('POST /v1/batches, JSON', () => {
  it('creates the batch (202), counts it, and names each rejected line with its number and reason', async () => {
    // Prepare
    const world = batchWorld(NOW);

    // Act
    const response = await postJson(world.app, {
      requests: [{ prompt: 'a fox' }, { prompt: 'a fox', n: 9 }, { prompt: 'an owl', size: '768*1024' }, 'x'],
    });

    // Assess
    expect(response.status).toBe(202);
    const created = (await response.json()) as Created;
    expect(created.id).toMatch(/^batch-20260301123456-[0-9a-f]{8}$/);
    expect(created).toMatchObject({
      status: 'in_progress',
      source: 'api',
      priority: 'batch',
      createdAt: '2026-03-01T12:34:56.789Z',
      counts: { total: 4, rejected: 2, ...ZERO, waiting: 2 },
      links: {
        self: `/v1/batches/${created.id}`,
        generations: `/v1/batches/${created.id}/generations`,
        cancel: `/v1/batches/${created.id}/cancel`,
        results: `/v1/batches/${created.id}/results`,
      },
    });
    expect(created.rejected).toEqual([
      {
        line: 2,
        error: {
          type: 'invalid_request',
          message: 'line 2: n: must be at most 4',
          details: [{ field: 'n', message: 'must be at most 4' }],
        },
      },
      {
        line: 4,
        error: {
          type: 'invalid_request',
          message: expect.stringMatching(/^line 4: \(body\): /),
          details: [{ field: '(body)', message: expect.any(String) }],
        },
      },
    ]);
    expect(created).not.toHaveProperty('completedAt');
  });

  it("writes the valid requests to requests/batches/<id>.jsonl with defaults and the batch's priority, rejected lines blank", async () => {
    // Prepare
    const world = batchWorld(NOW);

    // Act
    const created = await create(world, [{ prompt: 'a fox', n: 2 }, { n: 9 }, { prompt: 'an owl' }]);

    // Assess
    expect(requestsFile(world, created.id)).toEqual([
      generationRequestSchema.parse({ prompt: 'a fox', n: 2, priority: 'batch' }),
      null,
      generationRequestSchema.parse({ prompt: 'an owl', priority: 'batch' }),
    ]);
    expect(world.executions.calls.start).toEqual([]);
  });

  it('keeps the rejected lines for the results in batches/<id>/rejected.json', async () => {
    const world = batchWorld(NOW);

    const created = await create(world, [{ prompt: 'a fox' }, { prompt: '' }]);

    const kept = JSON.parse(world.objects.get(rejectedKeyOf(created.id))?.body ?? '{}');
    expect(kept).toEqual({
      lines: [
        { line: 2, error: { type: 'invalid_request', message: expect.stringMatching(/^line 2: prompt: /) } },
      ],
    });
  });

  it("takes priority interactive for every line, and keeps a line's own priority", async () => {
    const world = batchWorld(NOW);

    const created = await create(world, [{ prompt: 'a fox' }, { prompt: 'an owl', priority: 'batch' }], {
      priority: 'interactive',
    });

    expect(created.priority).toBe('interactive');
    expect(requestsFile(world, created.id).map((line) => line?.priority)).toEqual(['interactive', 'batch']);
  });

  it('shows its metadata, never its webhook_url', async () => {
    const world = batchWorld(NOW);

    const created = await create(world, [{ prompt: 'a fox' }], {
      metadata: { project: 'foxes', run: '7' },
      webhook_url: 'https://hooks.example.com/batches?token=secret',
    });
    const shown = await get<BatchView>(world.app, created.links.self);

    expect(created.metadata).toEqual({ project: 'foxes', run: '7' });
    expect(JSON.stringify([created, shown])).not.toContain('hooks.example.com');
    expect((await world.batches.get(created.id))?.webhookUrl).toBe(
      'https://hooks.example.com/batches?token=secret',
    );
  });

  it('records Generation-Source: cli as its source, and refuses any other but api', async () => {
    const world = batchWorld(NOW);

    const cli = await postJson(
      world.app,
      { requests: [{ prompt: 'a fox' }] },
      { 'Generation-Source': 'cli' },
    );
    const console = await postJson(
      world.app,
      { requests: [{ prompt: 'a fox' }] },
      { 'Generation-Source': 'console' },
    );

    expect(((await cli.json()) as BatchView).source).toBe('cli');
    expect(console.status).toBe(400);
    expect(await fieldsOf(console)).toEqual(['Generation-Source']);
  });

  it('takes exactly 10,000 requests', async () => {
    const world = batchWorld(NOW);

    const created = await create(world, prompts(MAX_BATCH_LINES));

    expect(created.counts).toMatchObject({ total: MAX_BATCH_LINES, waiting: MAX_BATCH_LINES });
    expect(requestsFile(world, created.id)).toHaveLength(MAX_BATCH_LINES);
  }, 60_000);
});

describe('POST /v1/batches, NDJSON', () => {
  it('numbers lines as an editor does (blank lines count) and rejects a line that is not JSON with its reason', async () => {
    // Prepare
    const world = batchWorld(NOW);
    const text = [
      '{"prompt": "a fox"}',
      '',
      '{"prompt": "an owl"',
      '   ',
      '{"prompt": "a heron", "n": 2}',
      '',
    ].join('\r\n');

    // Act
    const response = await postNdjson(world.app, text);

    // Assess
    expect(response.status).toBe(202);
    const created = (await response.json()) as Created;
    expect(created.counts).toMatchObject({ total: 3, rejected: 1, waiting: 2 });
    expect(created.rejected).toEqual([
      {
        line: 3,
        error: {
          type: 'invalid_request',
          message: expect.stringMatching(/^line 3: is not valid JSON \(.+\)$/),
          details: [{ field: '(line)', message: expect.stringMatching(/^is not valid JSON/) }],
        },
      },
    ]);
    expect(requestsFile(world, created.id)).toEqual([
      generationRequestSchema.parse({ prompt: 'a fox', priority: 'batch' }),
      null,
      null,
      null,
      generationRequestSchema.parse({ prompt: 'a heron', n: 2, priority: 'batch' }),
    ]);
  });

  it.each([
    'application/x-ndjson',
    'application/ndjson',
    'application/jsonl',
    'application/x-ndjson; charset=utf-8',
  ])('takes %s', async (type) => {
    const world = batchWorld(NOW);

    const response = await postNdjson(world.app, '{"prompt": "a fox"}\n', '', { 'Content-Type': type });

    expect(response.status).toBe(202);
  });

  it('takes priority and webhook_url from the query', async () => {
    const world = batchWorld(NOW);

    const response = await postNdjson(
      world.app,
      '{"prompt": "a fox"}\n',
      `?priority=interactive&webhook_url=${encodeURIComponent('https://hooks.example.com/b')}`,
    );

    expect(response.status).toBe(202);
    const created = (await response.json()) as Created;
    expect(created.priority).toBe('interactive');
    expect(requestsFile(world, created.id)[0]?.priority).toBe('interactive');
    expect((await world.batches.get(created.id))?.webhookUrl).toBe('https://hooks.example.com/b');
  });

  it.each([
    ['a bad priority', '?priority=urgent', 'priority'],
    [
      'a refused webhook_url',
      `?webhook_url=${encodeURIComponent('https://169.254.169.254/')}`,
      'webhook_url',
    ],
    ['metadata (JSON form only)', '?metadata=x', 'metadata'],
    ['an unknown parameter', '?colour=red', 'colour'],
  ])('refuses %s in the query with a 400 naming it', async (_name, query, field) => {
    const world = batchWorld(NOW);

    const response = await postNdjson(world.app, '{"prompt": "a fox"}\n', query);

    expect(response.status).toBe(400);
    expect(await fieldsOf(response)).toEqual([field]);
    expect((await world.batches.list({ limit: 10 })).items).toEqual([]);
  });

  it.each([
    ['an empty body', ''],
    ['blank lines only', '\n  \n\r\n'],
  ])('refuses %s: it holds no request', async (_name, text) => {
    const world = batchWorld(NOW);

    const response = await postNdjson(world.app, text);

    expect(response.status).toBe(400);
    expect((await errorOf(response)).details).toEqual([{ field: '(body)', message: 'holds no request' }]);
  });

  it('refuses more than 10,000 requests, naming the body', async () => {
    const world = batchWorld(NOW);
    const text = `${'{"prompt": "a fox"}\n'.repeat(MAX_BATCH_LINES + 1)}`;

    const response = await postNdjson(world.app, text);

    expect(response.status).toBe(400);
    expect((await errorOf(response)).details).toEqual([
      { field: '(body)', message: 'holds at most 10000 requests' },
    ]);
    expect(world.objects.objects.size).toBe(0);
  });

  it('refuses a request after line 10,000, blank lines counted: its line would name no batch line', async () => {
    const world = batchWorld(NOW);
    const text = `${'\n'.repeat(100_000)}{"prompt": "a fox"}\n`;

    const response = await postNdjson(world.app, text);

    expect(response.status).toBe(400);
    expect((await errorOf(response)).details).toEqual([
      { field: '(body)', message: 'has a request after line 10000 (blank lines count)' },
    ]);
    expect(world.objects.objects.size).toBe(0);
  });
});

describe('POST /v1/batches refusals', () => {
  const many = (count: number) => JSON.stringify({ requests: prompts(count) });

  it.each([
    ['not JSON', '{"requests": [', ['(body)']],
    ['a JSON array', '[{"prompt": "a fox"}]', ['(body)']],
    ['null', 'null', ['(body)']],
    ['no requests', '{}', ['requests']],
    ['requests not a list', '{"requests": {"prompt": "a fox"}}', ['requests']],
    ['an empty list', '{"requests": []}', ['requests']],
    ['10,001 requests', many(MAX_BATCH_LINES + 1), ['requests']],
    ['an unknown field', '{"requests": [{"prompt": "a fox"}], "model": "x"}', ['model']],
    ['a bad priority', '{"requests": [{"prompt": "a fox"}], "priority": "urgent"}', ['priority']],
    ['metadata not an object', '{"requests": [{"prompt": "a fox"}], "metadata": "x"}', ['metadata']],
    [
      'a metadata value not a string',
      '{"requests": [{"prompt": "a fox"}], "metadata": {"a": 1}}',
      ['metadata.a'],
    ],
    [
      'metadata with 17 keys',
      JSON.stringify({
        requests: [{ prompt: 'a fox' }],
        metadata: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 'v'])),
      }),
      ['metadata'],
    ],
    [
      'a metadata key over 64 characters',
      JSON.stringify({ requests: [{ prompt: 'a fox' }], metadata: { ['k'.repeat(65)]: 'v' } }),
      [`metadata.${'k'.repeat(65)}`],
    ],
    [
      'a metadata value over 512 characters',
      JSON.stringify({ requests: [{ prompt: 'a fox' }], metadata: { k: 'v'.repeat(513) } }),
      ['metadata.k'],
    ],
    ['a webhook_url not a string', '{"requests": [{"prompt": "a fox"}], "webhook_url": 7}', ['webhook_url']],
    [
      'a webhook_url the notifier would refuse (link-local)',
      '{"requests": [{"prompt": "a fox"}], "webhook_url": "https://169.254.169.254/"}',
      ['webhook_url'],
    ],
    [
      'a webhook_url the notifier would refuse (http)',
      '{"requests": [{"prompt": "a fox"}], "webhook_url": "http://hooks.example.com/"}',
      ['webhook_url'],
    ],
    [
      'a webhook_url that is no URL',
      '{"requests": [{"prompt": "a fox"}], "webhook_url": "nope"}',
      ['webhook_url'],
    ],
    ['no valid request at all', '{"requests": [{"n": 2}, {"prompt": ""}]}', ['requests[0]', 'requests[1]']],
  ])(
    'answers 400 to %s, naming the field, and creates nothing',
    async (_name, body, fields) => {
      // Prepare
      const world = batchWorld(NOW);

      // Act
      const response = await postJson(world.app, body);

      // Assess
      expect(response.status).toBe(400);
      const error = await errorOf(response);
      expect(error.type).toBe('invalid_request');
      expect([...new Set((error.details ?? []).map((detail) => detail.field))].sort()).toEqual(fields);
      expect(error.message).toMatch(/^(Invalid request|The request body is not valid JSON)/);
      expect((await world.batches.list({ limit: 10 })).items).toEqual([]);
      expect(world.objects.objects.size).toBe(0);
    },
    30_000,
  );

  it('says why the notifier refuses a webhook_url, without the line prefix', async () => {
    const world = batchWorld(NOW);

    const response = await postJson(world.app, {
      requests: [{ prompt: 'a fox' }],
      webhook_url: 'https://127.0.0.1/',
    });

    expect((await errorOf(response)).details).toEqual([
      { field: 'webhook_url', message: expect.stringMatching(/^is refused by this deployment's notifier: /) },
    ]);
  });

  it.each([
    [{ ['k'.repeat(65)]: 'v' }, `metadata.${'k'.repeat(65)}`, 'a key is at most 64 characters'],
    [{ '': 'v' }, 'metadata.', 'a key must not be empty'],
    [
      Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 'v'])),
      'metadata',
      'must have at most 16 keys',
    ],
    [[], 'metadata', 'must be an object of strings'],
  ])('says why metadata %j is refused', async (metadata, field, message) => {
    const world = batchWorld(NOW);

    const response = await postJson(world.app, { requests: [{ prompt: 'a fox' }], metadata });

    expect((await errorOf(response)).details).toEqual([{ field, message }]);
  });

  it('names each line of a batch with no valid request, with its reason', async () => {
    const world = batchWorld(NOW);

    const response = await postNdjson(world.app, '{"n": 2}\nnope\n');

    expect(response.status).toBe(400);
    expect((await errorOf(response)).details).toEqual([
      { field: 'requests[0]', message: 'line 1: prompt: is required' },
      { field: 'requests[1]', message: expect.stringMatching(/^line 2: is not valid JSON \(/) },
    ]);
    expect(world.objects.objects.size).toBe(0);
  });

  it('answers 400 naming (body) to bytes that are not UTF-8', async () => {
    const world = batchWorld(NOW);

    const response = await world.app.request('/v1/batches', {
      method: 'POST',
      headers: JSON_TYPE,
      body: new Uint8Array([0x7b, 0x22, 0xff, 0x22, 0x7d]),
    });

    expect(response.status).toBe(400);
    expect(await fieldsOf(response)).toEqual(['(body)']);
  });

  it('answers 400 naming Idempotency-Key to a bad key', async () => {
    const world = batchWorld(NOW);

    const response = await postJson(
      world.app,
      { requests: [{ prompt: 'a fox' }] },
      { 'Idempotency-Key': 'a b' },
    );

    expect(response.status).toBe(400);
    expect(await fieldsOf(response)).toEqual(['Idempotency-Key']);
  });

  it.each([
    ['JSON', JSON_TYPE],
    ['NDJSON', NDJSON_TYPE],
  ])('answers 413 to a %s body over the limit', async (_name, headers) => {
    // Prepare
    const world = batchWorld(NOW);
    const body = `{"requests": [{"prompt": "${'x'.repeat(MAX_BATCH_BODY_BYTES)}"}]}`;

    // Act
    const response = await world.app.request('/v1/batches', { method: 'POST', headers, body });

    // Assess
    expect(response.status).toBe(413);
    expect(await errorOf(response)).toEqual({
      type: 'payload_too_large',
      message: `The request body is over ${MAX_BATCH_BODY_BYTES} bytes`,
    });
    expect((await world.batches.list({ limit: 10 })).items).toEqual([]);
  });

  it('takes a body of up to the limit (10,000 requests of ~500 bytes)', async () => {
    const world = batchWorld(NOW);
    const line = JSON.stringify({ prompt: 'p'.repeat(490) });
    const text = `${line}\n`.repeat(MAX_BATCH_LINES);

    const response = await postNdjson(world.app, text);

    expect(text.length).toBeGreaterThan(5_000_000);
    expect(response.status).toBe(202);
  }, 60_000);

  it.each([
    ['no content type', {}],
    ['text/plain', { 'Content-Type': 'text/plain' }],
    ['application/xml', { 'Content-Type': 'application/xml' }],
    ['text/csv', { 'Content-Type': 'text/csv' }],
  ])('answers 415 to %s', async (_name, headers) => {
    const world = batchWorld(NOW);

    const response = await world.app.request('/v1/batches', {
      method: 'POST',
      headers,
      body: '{"requests": [{"prompt": "a fox"}]}',
    });

    expect(response.status).toBe(415);
    expect((await errorOf(response)).type).toBe('unsupported_media_type');
  });
});

describe('POST /v1/batches with an Idempotency-Key', () => {
  const KEY = { 'Idempotency-Key': 'batch-key-1' };

  it('replays the same requests (200, Idempotent-Replayed: true): the same batch, created once', async () => {
    // Prepare
    const world = batchWorld(NOW);
    const first = await postJson(world.app, { requests: [{ prompt: 'a fox' }, { n: 9 }] }, KEY);
    world.clock.advance(60_000);

    // Act: the same requests, fields in another order and a default spelled out
    const again = await postJson(world.app, { requests: [{ n: 1, prompt: 'a fox' }, { n: 9 }] }, KEY);

    // Assess
    expect(first.status).toBe(202);
    expect(first.headers.get('Idempotent-Replayed')).toBeNull();
    expect(again.status).toBe(200);
    expect(again.headers.get('Idempotent-Replayed')).toBe('true');
    const [created, replayed] = [(await first.json()) as Created, (await again.json()) as Created];
    expect(replayed).toEqual(created);
    expect(created.id).toBe(idempotentBatchId('batch-key-1'));
    expect((await world.batches.list({ limit: 10 })).items).toHaveLength(1);
  });

  it('replays an NDJSON body the same way', async () => {
    const world = batchWorld(NOW);
    const text = '{"prompt": "a fox"}\n\n{"prompt": "an owl"}\n';

    const first = await postNdjson(world.app, text, '?priority=interactive', KEY);
    const again = await postNdjson(world.app, text, '?priority=interactive', KEY);

    expect(first.status).toBe(202);
    expect(again.status).toBe(200);
    expect(again.headers.get('Idempotent-Replayed')).toBe('true');
  });

  it('writes the requests file again while the batch runs (its first writer may have died)', async () => {
    const world = batchWorld(NOW);
    const created = await create(world, [{ prompt: 'a fox' }]);
    const id = idempotentBatchId('batch-key-1');
    await postJson(world.app, { requests: [{ prompt: 'a fox' }] }, KEY);
    world.objects.objects.delete(`${BUCKET}/${requestsKeyOf(id)}`);

    const again = await postJson(world.app, { requests: [{ prompt: 'a fox' }] }, KEY);

    expect(again.status).toBe(200);
    expect(requestsFile(world, id)).toHaveLength(1);
    expect(created.id).not.toBe(id);
  });

  it('does not write the requests file again once the batch ended', async () => {
    const world = batchWorld(NOW);
    const first = (await (
      await postJson(world.app, { requests: [{ prompt: 'a fox' }] }, KEY)
    ).json()) as Created;
    await startBatchFile(world, first.id);
    await endGeneration(world, `${first.id}-1`, 'succeeded');
    await finishBatch(world, first.id);
    world.objects.objects.delete(`${BUCKET}/${requestsKeyOf(first.id)}`);

    const again = await postJson(world.app, { requests: [{ prompt: 'a fox' }] }, KEY);

    expect(again.status).toBe(200);
    expect(((await again.json()) as Created).status).toBe('completed');
    expect(world.objects.get(requestsKeyOf(first.id))).toBeUndefined();
  });

  it.each([
    ['other requests', { requests: [{ prompt: 'an owl' }, { n: 8 }] }],
    ['another rejected line', { requests: [{ prompt: 'a fox' }, { n: 8 }, { n: 7 }] }],
    ['another priority', { requests: [{ prompt: 'a fox' }, { n: 9 }], priority: 'interactive' }],
    ['other metadata', { requests: [{ prompt: 'a fox' }, { n: 9 }], metadata: { a: 'b' } }],
    [
      'a webhook_url',
      { requests: [{ prompt: 'a fox' }, { n: 9 }], webhook_url: 'https://hooks.example.com/x' },
    ],
  ])('answers 409 to the same key with %s, and leaves the first batch as it was', async (_name, other) => {
    // Prepare
    const world = batchWorld(NOW);
    const created = (await (
      await postJson(world.app, { requests: [{ prompt: 'a fox' }, { n: 9 }] }, KEY)
    ).json()) as Created;
    const before = new Map(world.objects.objects);

    // Act
    const response = await postJson(world.app, other, KEY);

    // Assess
    expect(response.status).toBe(409);
    expect(await errorOf(response)).toEqual({
      type: 'conflict',
      message: 'This Idempotency-Key was already used with different requests',
    });
    expect(world.objects.objects).toEqual(before);
    expect(await get<BatchView>(world.app, created.links.self)).toMatchObject({ counts: created.counts });
  });
});

describe('GET /v1/batches/{id}', () => {
  it('shows the batch as created, then its counts as its generations move', async () => {
    // Prepare
    const world = batchWorld(NOW);
    const created = await create(world, [...prompts(4), { n: 9 }]);
    const { rejected: _, ...view } = created;
    expect(await get<BatchView>(world.app, created.links.self)).toEqual(view);
    await startBatchFile(world, created.id);
    const first = await world.index.get(`${created.id}-1`);
    await world.index.advance(
      taskUpdate(
        { id: `${created.id}-1`, request: first?.request },
        taskState({ status: 'running', dashscopeStatus: 'RUNNING', pollCount: 1 }),
        first?.createdAt ?? '',
      ),
    );
    await endGeneration(world, `${created.id}-2`, 'succeeded');
    await endGeneration(world, `${created.id}-3`, 'failed');

    // Act
    const shown = await get<BatchView>(world.app, created.links.self);

    // Assess
    expect(shown.counts).toEqual({
      total: 5,
      rejected: 1,
      waiting: 1,
      running: 1,
      succeeded: 1,
      partial: 0,
      failed: 1,
      canceled: 0,
    });
    expect(shown.status).toBe('in_progress');
  });

  it.each([
    ['an unknown id', 'batch-20260301000000-00000000'],
    ['a generation id', 'gen-1'],
    ['an id that is no batch id', 'batch-%00'],
    ['an id too long', `batch-${'x'.repeat(80)}`],
    ['dots', '..%2F'],
  ])('answers 404 to %s', async (_name, id) => {
    const world = batchWorld(NOW);

    const response = await world.app.request(`/v1/batches/${id}`);

    expect(response.status).toBe(404);
    expect((await errorOf(response)).type).toBe('not_found');
  });
});

describe('GET /v1/batches', () => {
  it('lists batches newest first, a page at a time, until no cursor', async () => {
    // Prepare
    const world = batchWorld(NOW);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push((await create(world, [{ prompt: `fox ${i}` }])).id);
      world.clock.advance(1000);
    }

    // Act
    const pages: BatchView[][] = [];
    let path = '/v1/batches?limit=2';
    for (;;) {
      const page = await get<{ data: BatchView[]; nextCursor?: string }>(world.app, path);
      pages.push(page.data);
      if (!page.nextCursor) break;
      path = `/v1/batches?limit=2&cursor=${encodeURIComponent(page.nextCursor)}`;
    }

    // Assess
    expect(pages.map((page) => page.map((batch) => batch.id))).toEqual([
      [ids[4], ids[3]],
      [ids[2], ids[1]],
      [ids[0]],
    ]);
  });

  it('answers an empty list in one page', async () => {
    const world = batchWorld(NOW);

    expect(await get(world.app, '/v1/batches')).toEqual({ data: [] });
  });

  it.each([
    ['a cursor this API did not issue', 'cursor=!!!', 'cursor'],
    ["a cursor of a batch's generations", `cursor=${encodeLineCursor('batch-x', undefined, 1)}`, 'cursor'],
    ['an empty cursor', 'cursor=', 'cursor'],
    ['a cursor over 4096 characters', `cursor=${'x'.repeat(4097)}`, 'cursor'],
    ['limit 0', 'limit=0', 'limit'],
    ['limit 51', 'limit=51', 'limit'],
    ['limit not a number', 'limit=abc', 'limit'],
    ['a status (batches have no filter)', 'status=completed', 'status'],
  ])('answers 400 to %s, naming %s', async (_name, query, field) => {
    const world = batchWorld(NOW);

    const response = await world.app.request(`/v1/batches?${query}`);

    expect(response.status).toBe(400);
    expect(await fieldsOf(response)).toEqual([field]);
  });
});

describe('GET /v1/batches/{id}/generations', () => {
  async function startedBatch(world: BatchWorld) {
    const created = await create(world, [...prompts(3), { n: 9 }, ...prompts(2)]);
    await startBatchFile(world, created.id);
    await endGeneration(world, `${created.id}-2`, 'failed');
    await endGeneration(world, `${created.id}-3`, 'succeeded');
    await endGeneration(world, `${created.id}-6`, 'failed');
    return created;
  }

  async function walk(app: Hono, base: string) {
    const pages: string[][] = [];
    let path = base;
    for (;;) {
      const page = await get<GenerationPage>(app, path);
      pages.push(page.data.map((generation) => generation.id.split('-').at(-1) ?? ''));
      if (!page.nextCursor) return pages;
      path = `${base}&cursor=${encodeURIComponent(page.nextCursor)}`;
    }
  }

  it('pages through its generations in line order, each with its request', async () => {
    const world = batchWorld(NOW);
    const created = await startedBatch(world);

    const pages = await walk(world.app, `${created.links.generations}?limit=2`);
    const first = await get<GenerationPage>(world.app, `${created.links.generations}?limit=1`);

    expect(pages).toEqual([['1', '2'], ['3', '5'], ['6']]);
    expect(first.data[0]).toMatchObject({
      id: `${created.id}-1`,
      status: 'queued',
      request: { prompt: 'fox 1', priority: 'batch' },
    });
  });

  it('filters by count, with its own cursors', async () => {
    const world = batchWorld(NOW);
    const created = await startedBatch(world);

    expect(await walk(world.app, `${created.links.generations}?status=failed&limit=1`)).toEqual([
      ['2'],
      ['6'],
    ]);
    expect(await walk(world.app, `${created.links.generations}?status=waiting&limit=5`)).toEqual([
      ['1', '5'],
    ]);
    expect(await walk(world.app, `${created.links.generations}?status=partial`)).toEqual([[]]);
  });

  it('shows none before the trigger started its lines', async () => {
    const world = batchWorld(NOW);
    const created = await create(world, prompts(2));

    expect(await get(world.app, created.links.generations)).toEqual({ data: [] });
  });

  it.each([
    ['a cursor of another batch', 'other-batch', 'failed'],
    ['a cursor of another filter', 'same-batch', 'waiting'],
    ['a cursor of no filter', 'same-batch', undefined],
  ])('answers 400 naming cursor to %s', async (_name, whose, status) => {
    // Prepare
    const world = batchWorld(NOW);
    const created = await startedBatch(world);
    const other = await create(world, prompts(3));
    const cursor = encodeLineCursor(whose === 'same-batch' ? created.id : other.id, status, 1);

    // Act
    const response = await world.app.request(
      `${created.links.generations}?status=failed&cursor=${encodeURIComponent(cursor)}`,
    );

    // Assess
    expect(response.status).toBe(400);
    expect(await fieldsOf(response)).toEqual(['cursor']);
  });

  it.each([
    ['an unknown status', 'status=queued', 'status'],
    ['a cursor this API did not issue', 'cursor=!!!', 'cursor'],
    ['a generations-list cursor', 'cursor=abc.def', 'cursor'],
    ['limit 51', 'limit=51', 'limit'],
    ['an unknown parameter', 'colour=red', 'colour'],
  ])('answers 400 to %s', async (_name, query, field) => {
    const world = batchWorld(NOW);
    const created = await create(world, prompts(1));

    const response = await world.app.request(`${created.links.generations}?${query}`);

    expect(response.status).toBe(400);
    expect(await fieldsOf(response)).toEqual([field]);
  });

  it.each([
    ['an unknown batch', 'batch-20260301000000-00000000'],
    ['a malformed id', 'gen-1'],
  ])('answers 404 to %s', async (_name, id) => {
    const world = batchWorld(NOW);

    const response = await world.app.request(`/v1/batches/${id}/generations`);

    expect(response.status).toBe(404);
  });
});

describe('POST /v1/batches/{id}/cancel', () => {
  it('turns the batch cancelling (202) and cancels its waiting generations through the executions', async () => {
    // Prepare
    const world = batchWorld(NOW);
    const created = await create(world, [...prompts(3), { n: 9 }]);
    await startBatchFile(world, created.id);
    await endGeneration(world, `${created.id}-1`, 'succeeded');

    // Act
    const response = await world.app.request(created.links.cancel, { method: 'POST' });

    // Assess
    expect(response.status).toBe(202);
    const cancelled = (await response.json()) as BatchView;
    expect(cancelled).toMatchObject({
      id: created.id,
      status: 'cancelling',
      counts: { total: 4, rejected: 1, ...ZERO, succeeded: 1, canceled: 2 },
    });
    expect(world.executions.calls.stop.map((call) => call.name).sort()).toEqual([
      `${created.id}-2`,
      `${created.id}-3`,
    ]);
    expect(world.executions.executions.get(`${created.id}-2`)?.status).toBe('ABORTED');
    expect((await world.index.get(`${created.id}-3`))?.status).toBe('canceled');
    expect((await world.index.get(`${created.id}-1`))?.status).toBe('succeeded');
  });

  it('is harmless to repeat', async () => {
    const world = batchWorld(NOW);
    const created = await create(world, prompts(2));
    await startBatchFile(world, created.id);
    const first = await world.app.request(created.links.cancel, { method: 'POST' });

    const again = await world.app.request(created.links.cancel, { method: 'POST' });

    expect(again.status).toBe(202);
    expect(await again.json()).toEqual(await first.json());
  });

  it('keeps lines the trigger had not started from ever starting', async () => {
    // Prepare
    const world = batchWorld(NOW);
    const created = await create(world, prompts(3));

    // Act (one line at a time: startBatchLines's workers race on the first status read, and
    // up to concurrency - 1 lines start after a cancel with its default of 8)
    const response = await world.app.request(created.links.cancel, { method: 'POST' });
    await startBatchFile(world, created.id, 1);

    // Assess
    expect(((await response.json()) as BatchView).counts).toMatchObject({ waiting: 0, canceled: 3 });
    expect(world.executions.calls.start).toEqual([]);
    expect((await get<BatchView>(world.app, created.links.self)).counts).toMatchObject({
      waiting: 0,
      canceled: 3,
    });
  });

  it('answers a batch that already ended as it is', async () => {
    const world = batchWorld(NOW);
    const created = await create(world, prompts(1));
    await startBatchFile(world, created.id);
    await endGeneration(world, `${created.id}-1`, 'succeeded');
    await finishBatch(world, created.id);

    const response = await world.app.request(created.links.cancel, { method: 'POST' });

    expect(response.status).toBe(202);
    expect(((await response.json()) as BatchView).status).toBe('completed');
    expect(world.executions.calls.stop).toEqual([]);
  });

  it.each([
    ['an unknown batch', 'batch-20260301000000-00000000'],
    ['a malformed id', 'x%00'],
  ])('answers 404 to %s', async (_name, id) => {
    const world = batchWorld(NOW);

    const response = await world.app.request(`/v1/batches/${id}/cancel`, { method: 'POST' });

    expect(response.status).toBe(404);
    expect((await errorOf(response)).type).toBe('not_found');
  });
});

describe('GET /v1/batches/{id}/results', () => {
  it('answers 409 until the batch ended, cancelling included', async () => {
    const world = batchWorld(NOW);
    const created = await create(world, prompts(2));
    const running = await world.app.request(created.links.results);
    await world.app.request(created.links.cancel, { method: 'POST' });

    const cancelling = await world.app.request(created.links.results);

    for (const response of [running, cancelling]) {
      expect(response.status).toBe(409);
      expect(await errorOf(response)).toEqual({
        type: 'conflict',
        message: `Batch ${created.id} has not ended yet: its results are written when it does`,
      });
    }
  });

  it('links the results file once the batch ended (200), with when the link expires', async () => {
    // Prepare
    const world = batchWorld(NOW);
    const created = await create(world, [...prompts(2), { n: 9 }]);
    await startBatchFile(world, created.id);
    await endGeneration(world, `${created.id}-1`, 'succeeded');
    await endGeneration(world, `${created.id}-2`, 'failed');
    await finishBatch(world, created.id);

    // Act
    const response = await world.app.request(created.links.results);

    // Assess
    expect(response.status).toBe(200);
    const key = `batches/${created.id}/results.jsonl`;
    expect(await response.json()).toEqual({
      key,
      url: `https://signed.example/${key}`,
      expiresAt: URL_EXPIRES_AT,
      expiresInSeconds: (Date.parse(URL_EXPIRES_AT) - NOW) / 1000,
    });
    expect(await get<BatchView>(world.app, created.links.self)).toMatchObject({
      status: 'completed',
      completedAt: '2026-03-01T12:34:56.789Z',
      counts: { total: 3, rejected: 1, ...ZERO, succeeded: 1, failed: 1 },
    });
  });

  it('links the results of a cancelled batch', async () => {
    const world = batchWorld(NOW);
    const created = await create(world, prompts(2));
    await startBatchFile(world, created.id);
    await world.app.request(created.links.cancel, { method: 'POST' });
    await finishBatch(world, created.id);

    const response = await world.app.request(created.links.results);

    expect(response.status).toBe(200);
    expect((await get<BatchView>(world.app, created.links.self)).status).toBe('cancelled');
  });

  it.each(['batch-20260301000000-00000000', 'nope'])('answers 404 to %s', async (id) => {
    const world = batchWorld(NOW);

    const response = await world.app.request(`/v1/batches/${id}/results`);

    expect(response.status).toBe(404);
  });
});

describe('the batch routes behind the API token', () => {
  const ROUTES: [string, string][] = [
    ['POST', '/v1/batches'],
    ['GET', '/v1/batches'],
    ['GET', '/v1/batches/batch-20260301000000-00000000'],
    ['GET', '/v1/batches/batch-20260301000000-00000000/generations'],
    ['POST', '/v1/batches/batch-20260301000000-00000000/cancel'],
    ['GET', '/v1/batches/batch-20260301000000-00000000/results'],
    ['GET', '/v1/batches/nope/nothing'],
  ];

  it.each(ROUTES)('%s %s answers 401 with a challenge without the token', async (method, path) => {
    const world = batchWorld(NOW, { apiToken: TOKEN });

    const response = await world.app.request(path, {
      method,
      headers: { ...JSON_TYPE, Authorization: 'Bearer wrong' },
      body: method === 'POST' ? JSON.stringify({ requests: [{ prompt: 'a fox' }] }) : undefined,
    });

    expect(response.status).toBe(401);
    expect(response.headers.get('WWW-Authenticate')).toBe('Bearer realm="sd35"');
    expect((await errorOf(response)).type).toBe('unauthorized');
    expect((await world.batches.list({ limit: 10 })).items).toEqual([]);
    expect(world.objects.objects.size).toBe(0);
  });

  it('creates a batch with the token', async () => {
    const world = batchWorld(NOW, { apiToken: TOKEN });

    const response = await postJson(
      world.app,
      { requests: [{ prompt: 'a fox' }] },
      { Authorization: `Bearer ${TOKEN}` },
    );

    expect(response.status).toBe(202);
  });

  it('answers 401 before 413 or 415', async () => {
    const world = batchWorld(NOW, { apiToken: TOKEN });

    const tooLarge = await postJson(world.app, 'x'.repeat(MAX_BATCH_BODY_BYTES + 1));
    const wrongType = await world.app.request('/v1/batches', { method: 'POST', body: 'x' });

    expect([tooLarge.status, wrongType.status]).toEqual([401, 401]);
  });
});

describe('the batch routes', () => {
  it.each([
    ['DELETE', '/v1/batches', 'GET, HEAD, POST'],
    ['PUT', '/v1/batches/batch-1', 'GET, HEAD'],
    ['GET', '/v1/batches/batch-1/cancel', 'POST'],
    ['POST', '/v1/batches/batch-1/results', 'GET, HEAD'],
  ])('answer 405 with Allow to %s %s', async (method, path, allow) => {
    const world = batchWorld(NOW);

    const response = await world.app.request(path, { method });

    expect(response.status).toBe(405);
    expect(response.headers.get('Allow')?.split(', ').sort().join(', ')).toBe(allow);
  });

  it('are not served without the batches, the object store and the bucket', async () => {
    const world = batchWorld(NOW);
    const app = apiOver(
      { executions: world.executions, index: world.index, batches: world.batches },
      world.clock,
    );

    const response = await app.request('/v1/batches');

    expect(response.status).toBe(404);
  });
});
