import type { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { type ApiOptions, createApiApp, MAX_BODY_BYTES } from '../../functions/api/app.js';
import { idempotentId } from '../../functions/api/generations.js';
import type { Clock } from '../../functions/shared/clock.js';
import type { DashScopeClient } from '../../functions/shared/dashscope/client.js';
import type {
  ListTasksResponse,
  SubmitResponse,
  TaskResponse,
} from '../../functions/shared/dashscope/schemas.js';
import { DashScopeRejectedError } from '../../functions/shared/errors.js';
import {
  type GenerationRequest,
  type GenerationRequestInput,
  generationRequestSchema,
} from '../../functions/shared/generation-request.js';
import { type Logger, silentLogger } from '../../functions/shared/logger.js';
import type { PersistResult } from '../../functions/shared/workflow-state.js';
import { MemoryGenerationIndex } from '../fakes/memory-index.js';
import { FakeExecutionService } from './fake-executions.js';
import { fakePresign, taskState, URL_EXPIRES_AT } from './fixtures.js';

const NOW = Date.parse('2026-03-01T12:34:56.789Z');
const clock: Clock = { now: () => NOW };
const presign = fakePresign;

/** Records the task ids it is asked to cancel; the other calls are not the API's business. */
class FakeDashScope implements DashScopeClient {
  readonly cancels: string[] = [];
  cancelError?: Error;

  submit(): Promise<SubmitResponse> {
    return Promise.reject(new Error('The API never submits'));
  }

  getTask(): Promise<TaskResponse> {
    return Promise.reject(new Error('The API never queries tasks'));
  }

  async cancel(taskId: string): Promise<void> {
    this.cancels.push(taskId);
    if (this.cancelError) throw this.cancelError;
  }

  listTasks(): Promise<ListTasksResponse> {
    return Promise.reject(new Error('The API never lists tasks'));
  }
}

function setup(options: ApiOptions & { logger?: Logger } = {}) {
  const index = new MemoryGenerationIndex();
  const executions = new FakeExecutionService(clock, index);
  const dashscope = new FakeDashScope();
  const app = createApiApp(
    { executions, index, presign, dashscope, clock, logger: options.logger ?? silentLogger },
    options,
  );
  return { app, executions, index, dashscope };
}

function post(app: Hono, body: unknown, headers: Record<string, string> = {}) {
  return app.request('/v1/generations', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
}

interface ErrorJson {
  error: { type: string; message: string; details?: { field: string; message: string }[] };
}

const errorOf = async (response: Response) => ((await response.json()) as ErrorJson).error;
const fieldsOf = async (response: Response) =>
  [...new Set(((await errorOf(response)).details ?? []).map((detail) => detail.field))].sort();

const request = (input: Partial<GenerationRequestInput> = {}): GenerationRequest =>
  generationRequestSchema.parse({ prompt: 'a lighthouse at dusk', ...input });

const image = (index: number) => ({
  index,
  key: `generations/gen-1/${index}.png`,
  bytes: 1234 + index,
  sha256: `sha-${index}`,
  contentType: 'image/png',
  seed: 42 + index,
});

function succeeded(result: Partial<PersistResult> = {}) {
  const task = taskState({
    status: 'succeeded',
    dashscopeStatus: 'SUCCEEDED',
    times: {
      submit: '2026-03-01T12:00:01.000Z',
      scheduled: '2026-03-01T12:00:02.000Z',
      end: '2026-03-01T12:00:20.000Z',
    },
  });
  return {
    status: 'SUCCEEDED' as const,
    input: request({ n: 2 }),
    stopDate: new Date('2026-03-01T12:00:30.000Z'),
    output: {
      id: 'gen-1',
      request: request({ n: 2 }),
      task,
      result: {
        manifestKey: 'generations/gen-1/manifest.json',
        status: 'complete',
        images: [image(0), image(1)],
        failed: [],
        ...result,
      },
    },
  };
}

const CONTENT_POLICY_CAUSE = JSON.stringify({
  errorType: 'ContentPolicyError',
  errorMessage:
    'POST /services/aigc/text2image/image-synthesis: HTTP 400 DataInspectionFailed: Input data may contain inappropriate content.',
  trace: [
    'ContentPolicyError: POST /services/aigc/text2image/image-synthesis: HTTP 400 DataInspectionFailed',
    '    at errorFromResponse (file:///var/task/index.mjs:1:2345)',
  ],
});

describe('POST /v1/generations', () => {
  it('answers 202 with the id, status queued, the creation time and links', async () => {
    // Prepare
    const { app } = setup();

    // Act
    const response = await post(app, { prompt: 'a lighthouse at dusk' });

    // Assess
    expect(response.status).toBe(202);
    const body = (await response.json()) as { id: string };
    expect(body).toEqual({
      id: body.id,
      status: 'queued',
      createdAt: '2026-03-01T12:34:56.789Z',
      links: { self: `/v1/generations/${body.id}`, cancel: `/v1/generations/${body.id}/cancel` },
    });
  });

  it('names a new generation gen-<UTC timestamp>-<6 hex>', async () => {
    // Prepare
    const { app } = setup();

    // Act
    const body = (await (await post(app, { prompt: 'a lighthouse' })).json()) as { id: string };

    // Assess
    expect(body.id).toMatch(/^gen-20260301123456-[0-9a-f]{6}$/);
  });

  it('starts the execution with the request, every default applied', async () => {
    // Prepare
    const { app, executions } = setup();

    // Act
    const body = (await (await post(app, { prompt: '  a lighthouse  ' })).json()) as { id: string };

    // Assess
    expect(executions.calls.start).toEqual([
      {
        name: body.id,
        input: {
          prompt: 'a lighthouse',
          model: 'stable-diffusion-3.5-large',
          size: '1024*1024',
          n: 1,
          steps: 40,
          cfg: 4.5,
          shift: 3,
          // Someone waits on an API request: it goes in the interactive lane.
          priority: 'interactive',
        },
      },
    ]);
  });

  it('accepts application/json with a charset', async () => {
    // Prepare
    const { app } = setup();

    // Act
    const response = await post(
      app,
      { prompt: 'a lighthouse' },
      { 'Content-Type': 'application/json; charset=utf-8' },
    );

    // Assess
    expect(response.status).toBe(202);
  });

  it('names each bad field in details, an unknown key included', async () => {
    // Prepare
    const { app } = setup();

    // Act
    const response = await post(app, { prompt: '', n: 9, size: '1024x1024', negativePrompt: 'blurry' });

    // Assess
    expect(response.status).toBe(400);
    expect(await fieldsOf(response)).toEqual(['n', 'negativePrompt', 'prompt', 'size']);
  });

  it('answers invalid_request with a message that lists the problems', async () => {
    // Prepare
    const { app } = setup();

    // Act
    const error = await errorOf(await post(app, { prompt: 'a lighthouse', negativePrompt: 'blurry' }));

    // Assess
    expect(error.type).toBe('invalid_request');
    expect(error.message).toBe('Invalid request: negativePrompt: is not a known field');
  });

  it('names prompt when it is missing', async () => {
    // Prepare
    const { app } = setup();

    // Act
    const response = await post(app, { n: 2 });

    // Assess
    expect(response.status).toBe(400);
    expect(await fieldsOf(response)).toEqual(['prompt']);
  });

  it('does not start anything for an invalid body', async () => {
    // Prepare
    const { app, executions } = setup();

    // Act
    await post(app, { prompt: 'a lighthouse', steps: 0 });

    // Assess
    expect(executions.calls.start).toEqual([]);
  });

  it.each([
    ['an array', [{ prompt: 'a lighthouse' }]],
    ['a string', 'a lighthouse'],
    ['a number', 42],
    ['null', null],
  ])('answers 400 naming (body) for %s', async (_what, body) => {
    // Prepare
    const { app } = setup();

    // Act
    const response = await post(app, body);

    // Assess
    expect(response.status).toBe(400);
    expect(await fieldsOf(response)).toEqual(['(body)']);
  });

  it('answers 400 naming (body) for invalid JSON', async () => {
    // Prepare
    const { app } = setup();

    // Act
    const response = await app.request('/v1/generations', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: '{"prompt": "a lighthouse",',
    });

    // Assess
    expect(response.status).toBe(400);
    expect(await errorOf(response)).toEqual({
      type: 'invalid_request',
      message: 'The request body is not valid JSON',
      details: [{ field: '(body)', message: 'is not valid JSON' }],
    });
  });

  it('answers 400 naming (body) for bytes that are not UTF-8, without starting anything', async () => {
    // Prepare
    const { app, executions } = setup();
    const latin1 = Buffer.from('{"prompt": "caf\u00e9 au lait"}', 'latin1');

    // Act
    const response = await app.request('/v1/generations', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: latin1,
    });

    // Assess
    expect(response.status).toBe(400);
    expect(await errorOf(response)).toEqual({
      type: 'invalid_request',
      message: 'The request body is not valid UTF-8',
      details: [{ field: '(body)', message: 'is not valid UTF-8' }],
    });
    expect(executions.calls.start).toEqual([]);
  });

  it('answers 415 without a content type', async () => {
    // Prepare
    const { app } = setup();

    // Act: a byte body, so that no content type is added for us.
    const response = await app.request('/v1/generations', {
      method: 'POST',
      body: new TextEncoder().encode(JSON.stringify({ prompt: 'a lighthouse' })),
    });

    // Assess
    expect(response.status).toBe(415);
    expect((await errorOf(response)).type).toBe('unsupported_media_type');
  });

  it.each(['text/plain', 'application/x-www-form-urlencoded', 'application/jsonp'])(
    'answers 415 for %s',
    async (contentType) => {
      // Prepare
      const { app } = setup();

      // Act
      const response = await post(app, { prompt: 'a lighthouse' }, { 'Content-Type': contentType });

      // Assess
      expect(response.status).toBe(415);
    },
  );

  it('answers 413 for a body over 16 KB', async () => {
    // Prepare
    const { app } = setup();
    const body = JSON.stringify({ prompt: 'a lighthouse', pad: 'x'.repeat(MAX_BODY_BYTES) });

    // Act
    const response = await app.request('/v1/generations', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body,
    });

    // Assess
    expect(response.status).toBe(413);
    expect((await errorOf(response)).type).toBe('payload_too_large');
  });

  it('answers 413 from Content-Length alone', async () => {
    // Prepare
    const { app } = setup();
    const body = JSON.stringify({ prompt: 'a lighthouse', pad: 'x'.repeat(MAX_BODY_BYTES) });

    // Act
    const response = await app.request('/v1/generations', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'Content-Length': String(body.length) },
      body,
    });

    // Assess
    expect(response.status).toBe(413);
  });

  it('accepts a body of exactly 16 KB', async () => {
    // Prepare
    const { app } = setup();
    const json = JSON.stringify({ prompt: 'a lighthouse' });
    const body = json + ' '.repeat(MAX_BODY_BYTES - json.length);

    // Act
    const response = await app.request('/v1/generations', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body,
    });

    // Assess
    expect(response.status).toBe(202);
  });

  it('does not start anything for a body over 16 KB', async () => {
    // Prepare
    const { app, executions } = setup();

    // Act
    await post(app, { prompt: 'x'.repeat(MAX_BODY_BYTES) });

    // Assess
    expect(executions.calls.start).toEqual([]);
  });
});

describe('POST /v1/generations with Idempotency-Key', () => {
  it('names the execution after the key, the same for the same key', async () => {
    // Prepare
    const first = setup();
    const second = setup();

    // Act
    const a = (await (await post(first.app, { prompt: 'a' }, { 'Idempotency-Key': 'k-1' })).json()) as {
      id: string;
    };
    const b = (await (await post(second.app, { prompt: 'b' }, { 'Idempotency-Key': 'k-1' })).json()) as {
      id: string;
    };

    // Assess
    expect(a.id).toMatch(/^idem-[A-Za-z0-9_-]{32}$/);
    expect(b.id).toBe(a.id);
  });

  it('replays an ended generation: 200 and Idempotent-Replayed', async () => {
    // Prepare
    const { app, executions } = setup();
    executions.seed({ name: idempotentId('order-17'), ...succeeded() });

    // Act
    const response = await post(
      app,
      { prompt: 'a lighthouse at dusk', n: 2 },
      { 'Idempotency-Key': 'order-17' },
    );

    // Assess
    expect(response.status).toBe(200);
    expect(response.headers.get('Idempotent-Replayed')).toBe('true');
  });

  it('answers a replay with the existing generation', async () => {
    // Prepare
    const { app, executions } = setup();
    const id = idempotentId('order-17');
    executions.seed({ name: id, ...succeeded(), startDate: new Date('2026-03-01T12:00:00Z') });

    // Act
    const response = await post(
      app,
      { prompt: 'a lighthouse at dusk', n: 2 },
      { 'Idempotency-Key': 'order-17' },
    );

    // Assess
    expect(await response.json()).toEqual({
      id,
      status: 'succeeded',
      createdAt: '2026-03-01T12:00:00.000Z',
      links: { self: `/v1/generations/${id}`, cancel: `/v1/generations/${id}/cancel` },
    });
  });

  it('replays the same request written differently (key order, explicit defaults)', async () => {
    // Prepare
    const { app, executions } = setup();
    executions.seed({ name: idempotentId('order-17'), ...succeeded() });

    // Act
    const response = await post(
      app,
      { steps: 40, n: 2, prompt: ' a lighthouse at dusk ', model: 'stable-diffusion-3.5-large' },
      { 'Idempotency-Key': 'order-17' },
    );

    // Assess
    expect(response.status).toBe(200);
  });

  it('does not start a second execution for a replay', async () => {
    // Prepare
    const { app, executions } = setup();
    executions.seed({ name: idempotentId('order-17'), ...succeeded() });

    // Act
    await post(app, { prompt: 'a lighthouse at dusk', n: 2 }, { 'Idempotency-Key': 'order-17' });

    // Assess
    expect(executions.executions.size).toBe(1);
  });

  it('answers 409 for the same key with another body after the generation ended', async () => {
    // Prepare
    const { app, executions } = setup();
    executions.seed({ name: idempotentId('order-17'), ...succeeded() });

    // Act
    const response = await post(
      app,
      { prompt: 'a lighthouse at dusk', n: 3 },
      { 'Idempotency-Key': 'order-17' },
    );

    // Assess
    expect(response.status).toBe(409);
  });

  it('answers 409 for the same key with another body while the first runs', async () => {
    // Prepare
    const { app } = setup();
    await post(app, { prompt: 'a lighthouse' }, { 'Idempotency-Key': 'order-17' });

    // Act
    const response = await post(app, { prompt: 'a windmill' }, { 'Idempotency-Key': 'order-17' });

    // Assess
    expect(response.status).toBe(409);
    expect((await errorOf(response)).type).toBe('conflict');
  });

  it.each([
    ['with a space', 'order 17'],
    ['of 256 characters', 'k'.repeat(256)],
  ])('answers 400 naming Idempotency-Key for a key %s', async (_what, key) => {
    // Prepare
    const { app } = setup();

    // Act
    const response = await post(app, { prompt: 'a lighthouse' }, { 'Idempotency-Key': key });

    // Assess
    expect(response.status).toBe(400);
    const error = await errorOf(response);
    expect(error.type).toBe('invalid_request');
    expect(error.message).toMatch(/^Invalid header: Idempotency-Key/);
  });

  it('does not start anything for an invalid key', async () => {
    // Prepare
    const { app, executions } = setup();

    // Act
    await post(app, { prompt: 'a lighthouse' }, { 'Idempotency-Key': 'order 17' });

    // Assess
    expect(executions.calls.start).toEqual([]);
  });

  it('answers concurrent requests with one key: one 202, then 200 replays of it with its createdAt', async () => {
    // Prepare: a clock that moves, so that each request would have a createdAt of its own
    let now = NOW;
    const ticking: Clock = { now: () => now++ };
    const index = new MemoryGenerationIndex();
    const executions = new FakeExecutionService(ticking, index);
    const app = createApiApp({ executions, index, presign, clock: ticking, logger: silentLogger });

    // Act
    const responses = await Promise.all(
      Array.from({ length: 20 }, () =>
        post(app, { prompt: 'a lighthouse at dusk' }, { 'Idempotency-Key': 'burst-1' }),
      ),
    );

    // Assess
    const answers = await Promise.all(
      responses.map(async (response) => ({
        status: response.status,
        replayed: response.headers.get('Idempotent-Replayed'),
        body: (await response.json()) as { id: string; createdAt: string },
      })),
    );
    expect(answers.filter((answer) => answer.status === 202)).toHaveLength(1);
    const first = answers.find((answer) => answer.status === 202);
    expect(first?.replayed).toBeNull();
    const replays = answers.filter((answer) => answer.status !== 202);
    expect(replays.map((answer) => [answer.status, answer.replayed])).toEqual(Array(19).fill([200, 'true']));
    expect(new Set(answers.map((answer) => answer.body.id)).size).toBe(1);
    expect(new Set(answers.map((answer) => answer.body.createdAt))).toEqual(new Set([first?.body.createdAt]));
    expect(executions.calls.start).toHaveLength(1);
  });
});

describe('the source a generation records', () => {
  const sourceOf = async (index: MemoryGenerationIndex, response: Response) =>
    (await index.get(((await response.json()) as { id: string }).id))?.source;

  it('records api for a client that names none', async () => {
    const { app, index } = setup();

    const response = await post(app, { prompt: 'a lighthouse' });

    expect(response.status).toBe(202);
    expect(await sourceOf(index, response)).toBe('api');
  });

  it.each(['api', 'cli'])('records %s when Generation-Source says so', async (source) => {
    const { app, index } = setup();

    const response = await post(app, { prompt: 'a lighthouse' }, { 'Generation-Source': source });

    expect(response.status).toBe(202);
    expect(await sourceOf(index, response)).toBe(source);
  });

  it.each(['event', 'schedule', 'request-file', 'console', 'local', 'direct', 'CLI', ''])(
    'refuses a caller claiming %j, naming Generation-Source, and starts nothing',
    async (source) => {
      const { app, executions } = setup();

      const response = await post(app, { prompt: 'a lighthouse' }, { 'Generation-Source': source });

      expect(response.status).toBe(400);
      expect(await fieldsOf(response)).toEqual(['Generation-Source']);
      expect(executions.calls.start).toEqual([]);
    },
  );

  it('shows the source in the view', async () => {
    const { app } = setup();
    const created = (await (
      await post(app, { prompt: 'a lighthouse' }, { 'Generation-Source': 'cli' })
    ).json()) as {
      id: string;
    };

    const view = (await (await app.request(`/v1/generations/${created.id}`)).json()) as { source: string };

    expect(view.source).toBe('cli');
  });
});

describe('GET /v1/generations/{id}', () => {
  it('answers 404 for an unknown id', async () => {
    // Prepare
    const { app } = setup();

    // Act
    const response = await app.request('/v1/generations/gen-unknown');

    // Assess
    expect(response.status).toBe(404);
    expect(await errorOf(response)).toEqual({ type: 'not_found', message: 'No generation "gen-unknown"' });
  });

  it.each(['gen.1', 'gen%201', 'x'.repeat(81)])(
    'answers 404 without asking the index or the workflow for the illegal id %s',
    async (id) => {
      // Prepare
      const { app, executions, index } = setup();

      // Act
      const response = await app.request(`/v1/generations/${id}`);

      // Assess
      expect(response.status).toBe(404);
      expect(index.calls.get).toBe(0);
      expect(executions.calls.describe).toEqual([]);
    },
  );

  it('shows a generation queued before any poll', async () => {
    // Prepare
    const { app, executions } = setup();
    executions.seed({ name: 'gen-1', input: request({ n: 3 }), startDate: new Date('2026-03-01T12:00:00Z') });

    // Act
    const response = await app.request('/v1/generations/gen-1');

    // Assess
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      id: 'gen-1',
      status: 'queued',
      createdAt: '2026-03-01T12:00:00.000Z',
      source: 'api',
      request: request({ n: 3 }),
      dashscope: {},
      progress: { done: 0, failed: 0, total: 3 },
      links: { self: '/v1/generations/gen-1', cancel: '/v1/generations/gen-1/cancel' },
    });
  });

  it('shows a running generation with the progress of its task metrics', async () => {
    // Prepare
    const { app, executions } = setup();
    executions.seed({
      name: 'gen-1',
      input: request({ n: 4 }),
      lastTask: taskState({
        status: 'running',
        dashscopeStatus: 'RUNNING',
        progress: { total: 4, succeeded: 1, failed: 1 },
      }),
    });

    // Act
    const body = (await (await app.request('/v1/generations/gen-1')).json()) as Record<string, unknown>;

    // Assess
    expect(body).toMatchObject({ status: 'running', progress: { done: 1, failed: 1, total: 4 } });
  });

  it("shows DashScope's task id and times", async () => {
    // Prepare
    const { app, executions } = setup();
    executions.seed({
      name: 'gen-1',
      input: request(),
      lastTask: taskState({
        taskId: 'task-77',
        status: 'running',
        dashscopeStatus: 'RUNNING',
        times: { submit: '2026-03-01T12:00:01.000Z', scheduled: '2026-03-01T12:00:03.000Z' },
      }),
    });

    // Act
    const body = (await (await app.request('/v1/generations/gen-1')).json()) as Record<string, unknown>;

    // Assess
    expect(body.dashscope).toEqual({
      taskId: 'task-77',
      submitTime: '2026-03-01T12:00:01.000Z',
      scheduledTime: '2026-03-01T12:00:03.000Z',
    });
  });

  it('stays running while the images of a succeeded task are being stored', async () => {
    // Prepare
    const { app, executions } = setup();
    executions.seed({
      name: 'gen-1',
      input: request(),
      lastTask: taskState({ status: 'succeeded', dashscopeStatus: 'SUCCEEDED' }),
    });

    // Act
    const body = (await (await app.request('/v1/generations/gen-1')).json()) as Record<string, unknown>;

    // Assess
    expect(body.status).toBe('running');
  });

  it('shows a succeeded generation with presigned images', async () => {
    // Prepare
    const { app, executions } = setup();
    executions.seed({ name: 'gen-1', ...succeeded() });

    // Act
    const body = (await (await app.request('/v1/generations/gen-1')).json()) as Record<string, unknown>;

    // Assess
    expect(body).toMatchObject({
      status: 'succeeded',
      endedAt: '2026-03-01T12:00:30.000Z',
      progress: { done: 2, failed: 0, total: 2 },
      manifestKey: 'generations/gen-1/manifest.json',
      dashscope: { taskId: 'task-1', endTime: '2026-03-01T12:00:20.000Z' },
      images: [
        { ...image(0), url: 'https://signed.example/generations/gen-1/0.png', expiresAt: URL_EXPIRES_AT },
        { ...image(1), url: 'https://signed.example/generations/gen-1/1.png', expiresAt: URL_EXPIRES_AT },
      ],
    });
    expect(body).not.toHaveProperty('failedImages');
    expect(body).not.toHaveProperty('error');
  });

  it('presigns each image’s thumbnail beside it, and leaves thumbnailUrl out for an image without one', async () => {
    // Prepare
    const { app, executions } = setup();
    const thumbnail = {
      key: 'generations/gen-1/thumbnails/0.webp',
      bytes: 6000,
      contentType: 'image/webp',
      width: 256,
      height: 256,
    };
    executions.seed({ name: 'gen-1', ...succeeded({ images: [{ ...image(0), thumbnail }, image(1)] }) });

    // Act
    const body = (await (await app.request('/v1/generations/gen-1')).json()) as { images: object[] };

    // Assess
    expect(body.images[0]).toMatchObject({
      url: 'https://signed.example/generations/gen-1/0.png',
      thumbnailUrl: 'https://signed.example/generations/gen-1/thumbnails/0.webp',
      expiresAt: URL_EXPIRES_AT,
      thumbnail,
    });
    expect(body.images[1]).not.toHaveProperty('thumbnailUrl');
  });

  it('lists the failed images of a partial result', async () => {
    // Prepare
    const { app, executions } = setup();
    const failed = [{ index: 1, type: 'result_rejected', message: 'not a PNG' }];
    executions.seed({ name: 'gen-1', ...succeeded({ status: 'partial', images: [image(0)], failed }) });

    // Act
    const body = (await (await app.request('/v1/generations/gen-1')).json()) as Record<string, unknown>;

    // Assess
    expect(body).toMatchObject({
      status: 'succeeded',
      progress: { done: 1, failed: 1, total: 2 },
      failedImages: failed,
    });
    expect(body.images).toHaveLength(1);
  });

  it('shows a failed DashScope task with the type and code of its last task state', async () => {
    // Prepare
    const { app, executions } = setup();
    executions.seed({
      name: 'gen-1',
      input: request(),
      status: 'FAILED',
      error: 'DashScopeTaskFailed',
      cause: 'Algorithm process error',
      lastTask: taskState({
        status: 'failed',
        dashscopeStatus: 'FAILED',
        error: { type: 'upstream_error', code: 'InternalError.Algo', message: 'Algorithm process error' },
      }),
    });

    // Act
    const body = (await (await app.request('/v1/generations/gen-1')).json()) as Record<string, unknown>;

    // Assess
    expect(body).toMatchObject({
      status: 'failed',
      error: {
        type: 'upstream_error',
        message: 'Algorithm process error',
        upstreamCode: 'InternalError.Algo',
      },
    });
  });

  it("shows a Lambda's ContentPolicyError as content_policy with DashScope's code", async () => {
    // Prepare
    const { app, executions } = setup();
    executions.seed({
      name: 'gen-1',
      input: request(),
      status: 'FAILED',
      error: 'ContentPolicyError',
      cause: CONTENT_POLICY_CAUSE,
    });

    // Act
    const body = (await (await app.request('/v1/generations/gen-1')).json()) as Record<string, unknown>;

    // Assess
    expect(body).toMatchObject({
      status: 'failed',
      error: {
        type: 'content_policy',
        message:
          'POST /services/aigc/text2image/image-synthesis: HTTP 400 DataInspectionFailed: Input data may contain inappropriate content.',
        upstreamCode: 'DataInspectionFailed',
      },
    });
  });

  it("never shows a Lambda error's stack trace", async () => {
    // Prepare
    const { app, executions } = setup();
    executions.seed({
      name: 'gen-1',
      input: request(),
      status: 'FAILED',
      error: 'ContentPolicyError',
      cause: CONTENT_POLICY_CAUSE,
    });

    // Act
    const text = await (await app.request('/v1/generations/gen-1')).text();

    // Assess
    expect(text).not.toContain('trace');
    expect(text).not.toContain('index.mjs');
    expect(text).not.toContain('errorType');
  });

  it.each([
    ['DashScopeTaskCanceled', 'canceled'],
    ['DashScopeTaskExpired', 'expired'],
    ['TaskExpiredError', 'expired'],
    ['DeadlineExceeded', 'failed'],
  ])('shows an execution failed with %s as %s', async (error, status) => {
    // Prepare
    const { app, executions } = setup();
    executions.seed({ name: 'gen-1', input: request(), status: 'FAILED', error, cause: 'it ended' });

    // Act
    const body = (await (await app.request('/v1/generations/gen-1')).json()) as Record<string, unknown>;

    // Assess
    expect(body.status).toBe(status);
  });

  it('shows an aborted execution as canceled', async () => {
    // Prepare
    const { app, executions } = setup();
    executions.seed({ name: 'gen-1', input: request(), status: 'ABORTED' });

    // Act
    const body = (await (await app.request('/v1/generations/gen-1')).json()) as Record<string, unknown>;

    // Assess
    expect(body).toMatchObject({ status: 'canceled', error: { type: 'canceled' } });
  });

  it('shows a timed-out execution as failed with type timeout', async () => {
    // Prepare
    const { app, executions } = setup();
    executions.seed({ name: 'gen-1', input: request(), status: 'TIMED_OUT', error: 'States.Timeout' });

    // Act
    const body = (await (await app.request('/v1/generations/gen-1')).json()) as Record<string, unknown>;

    // Assess
    expect(body).toMatchObject({ status: 'failed', error: { type: 'timeout' } });
  });

  it('shows an unknown error name as internal_error', async () => {
    // Prepare
    const { app, executions } = setup();
    executions.seed({
      name: 'gen-1',
      input: request(),
      status: 'FAILED',
      error: 'Lambda.Unknown',
      cause: 'The Lambda runtime failed',
    });

    // Act
    const body = (await (await app.request('/v1/generations/gen-1')).json()) as Record<string, unknown>;

    // Assess
    expect(body).toMatchObject({ status: 'failed', error: { type: 'internal_error' } });
  });
});

describe('GET /v1/generations', () => {
  function seedThree(executions: FakeExecutionService) {
    executions.seed({ name: 'gen-old', ...succeeded(), startDate: new Date('2026-03-01T10:00:00Z') });
    executions.seed({
      name: 'gen-mid',
      input: request(),
      status: 'FAILED',
      error: 'ContentPolicyError',
      cause: CONTENT_POLICY_CAUSE,
      startDate: new Date('2026-03-01T11:00:00Z'),
    });
    executions.seed({ name: 'gen-new', input: request(), startDate: new Date('2026-03-01T12:00:00Z') });
  }
  const idsOf = async (response: Response) =>
    ((await response.json()) as { data: { id: string }[] }).data.map((item) => item.id);

  it('lists newest first', async () => {
    // Prepare
    const { app, executions } = setup();
    seedThree(executions);

    // Act
    const response = await app.request('/v1/generations');

    // Assess
    expect(response.status).toBe(200);
    expect(await idsOf(response)).toEqual(['gen-new', 'gen-mid', 'gen-old']);
  });

  it('answers 20 generations by default', async () => {
    // Prepare
    const { app, executions } = setup();
    for (let i = 0; i < 25; i++) executions.seed({ name: `gen-${i}`, input: request() });

    // Act
    const body = (await (await app.request('/v1/generations')).json()) as { data: unknown[] };

    // Assess
    expect(body.data).toHaveLength(20);
  });

  it('shows each item without presigned URLs', async () => {
    // Prepare
    const { app, executions } = setup();
    seedThree(executions);

    // Act
    const body = (await (await app.request('/v1/generations')).json()) as {
      data: Record<string, unknown>[];
    };

    // Assess
    expect(body.data[2]).toMatchObject({ id: 'gen-old', status: 'succeeded' });
    expect(body.data[2]).not.toHaveProperty('images');
  });

  it('filters by status', async () => {
    // Prepare
    const { app, executions } = setup();
    seedThree(executions);

    // Act
    const response = await app.request('/v1/generations?status=failed');

    // Assess
    expect(await idsOf(response)).toEqual(['gen-mid']);
  });

  it('answers a status with nothing to show in one call: no items, no cursor', async () => {
    // Prepare
    const { app, executions } = setup();
    for (let i = 0; i < 30; i++) executions.seed({ name: `gen-${i}`, input: request() });

    // Act
    const response = await app.request('/v1/generations?limit=5&status=failed');

    // Assess
    expect(await response.json()).toEqual({ data: [] });
  });

  it('tells queued from running among running executions', async () => {
    // Prepare
    const { app, executions } = setup();
    executions.seed({ name: 'gen-queued', input: request() });
    executions.seed({
      name: 'gen-running',
      input: request(),
      lastTask: taskState({ status: 'running', dashscopeStatus: 'RUNNING' }),
    });

    // Act
    const response = await app.request('/v1/generations?status=running');

    // Assess
    expect(await idsOf(response)).toEqual(['gen-running']);
  });

  it('answers at most limit items and a cursor', async () => {
    // Prepare
    const { app, executions } = setup();
    seedThree(executions);

    // Act
    const body = (await (await app.request('/v1/generations?limit=2')).json()) as {
      data: { id: string }[];
      nextCursor?: string;
    };

    // Assess
    expect(body.data.map((item) => item.id)).toEqual(['gen-new', 'gen-mid']);
    expect(body.nextCursor).toEqual(expect.any(String));
  });

  it('continues from the cursor to the last page, which has none', async () => {
    // Prepare
    const { app, executions } = setup();
    seedThree(executions);
    const first = (await (await app.request('/v1/generations?limit=2')).json()) as { nextCursor: string };

    // Act
    const response = await app.request(
      `/v1/generations?limit=2&cursor=${encodeURIComponent(first.nextCursor)}`,
    );

    // Assess
    const body = (await response.json()) as { data: { id: string }[]; nextCursor?: string };
    expect(body.data.map((item) => item.id)).toEqual(['gen-old']);
    expect(body).not.toHaveProperty('nextCursor');
  });

  it.each(['0', '51', '2.5', 'ten', ''])('answers 400 naming limit for limit=%s', async (limit) => {
    // Prepare
    const { app } = setup();

    // Act
    const response = await app.request(`/v1/generations?limit=${limit}`);

    // Assess
    expect(response.status).toBe(400);
    expect(await fieldsOf(response)).toEqual(['limit']);
  });

  it('answers 400 naming status for an unknown status', async () => {
    // Prepare
    const { app } = setup();

    // Act
    const response = await app.request('/v1/generations?status=done');

    // Assess
    expect(response.status).toBe(400);
    expect(await fieldsOf(response)).toEqual(['status']);
  });

  it('answers 400 naming cursor for a cursor it did not issue', async () => {
    // Prepare
    const { app } = setup();

    // Act
    const response = await app.request('/v1/generations?cursor=not-a-cursor');

    // Assess
    expect(response.status).toBe(400);
    expect(await fieldsOf(response)).toEqual(['cursor']);
  });

  it('answers 400 naming an unknown query parameter', async () => {
    // Prepare
    const { app } = setup();

    // Act
    const response = await app.request('/v1/generations?order=asc');

    // Assess
    expect(response.status).toBe(400);
    expect(await fieldsOf(response)).toEqual(['order']);
  });
});

describe('POST /v1/generations/{id}/cancel', () => {
  function seedQueued(executions: FakeExecutionService) {
    executions.seed({ name: 'gen-1', input: request(), lastTask: taskState({ taskId: 'task-pending' }) });
  }
  function seedRunning(executions: FakeExecutionService) {
    executions.seed({
      name: 'gen-1',
      input: request(),
      lastTask: taskState({ taskId: 'task-running', status: 'running', dashscopeStatus: 'RUNNING' }),
    });
  }
  const cancel = (app: Hono, id = 'gen-1') => app.request(`/v1/generations/${id}/cancel`, { method: 'POST' });

  it('stops the execution of a queued generation', async () => {
    // Prepare
    const { app, executions } = setup();
    seedQueued(executions);

    // Act
    await cancel(app);

    // Assess
    expect(executions.calls.stop).toEqual([
      { name: 'gen-1', reason: { error: 'DashScopeTaskCanceled', cause: 'Canceled through the API' } },
    ]);
  });

  it('cancels the PENDING DashScope task of a queued generation', async () => {
    // Prepare
    const { app, executions, dashscope } = setup();
    seedQueued(executions);

    // Act
    await cancel(app);

    // Assess
    expect(dashscope.cancels).toEqual(['task-pending']);
  });

  it('cancels the PENDING task on the DashScope account that runs it', async () => {
    // Prepare
    const index = new MemoryGenerationIndex();
    const executions = new FakeExecutionService(clock, index);
    const clients = { first: new FakeDashScope(), second: new FakeDashScope() };
    const app = createApiApp({
      executions,
      index,
      presign,
      dashscopeAccounts: { client: (name = 'first') => clients[name as keyof typeof clients] },
      clock,
      logger: silentLogger,
    });
    executions.seed({
      name: 'gen-1',
      input: request(),
      lastTask: taskState({ taskId: 'task-pending', account: 'second' }),
    });

    // Act
    await cancel(app);

    // Assess
    expect(clients.second.cancels).toEqual(['task-pending']);
    expect(clients.first.cancels).toEqual([]);
  });

  it('answers 202 with the generation, now canceled', async () => {
    // Prepare
    const { app, executions } = setup();
    seedQueued(executions);

    // Act
    const response = await cancel(app);

    // Assess
    expect(response.status).toBe(202);
    expect(await response.json()).toMatchObject({
      id: 'gen-1',
      status: 'canceled',
      endedAt: '2026-03-01T12:34:56.789Z',
    });
  });

  it('stops a running generation', async () => {
    // Prepare
    const { app, executions } = setup();
    seedRunning(executions);

    // Act
    await cancel(app);

    // Assess
    expect(executions.calls.stop.map((call) => call.name)).toEqual(['gen-1']);
  });

  it('leaves the RUNNING DashScope task of a running generation alone', async () => {
    // Prepare
    const { app, executions, dashscope } = setup();
    seedRunning(executions);

    // Act
    await cancel(app);

    // Assess
    expect(dashscope.cancels).toEqual([]);
  });

  it('still cancels when DashScope refuses to cancel the task', async () => {
    // Prepare
    const { app, executions, dashscope } = setup();
    seedQueued(executions);
    dashscope.cancelError = new DashScopeRejectedError('HTTP 400 UnsupportedOperation', {
      upstreamCode: 'UnsupportedOperation',
    });

    // Act
    const response = await cancel(app);

    // Assess
    expect(response.status).toBe(202);
    expect(await response.json()).toMatchObject({ status: 'canceled' });
  });

  it('is harmless to repeat', async () => {
    // Prepare
    const { app, executions, dashscope } = setup();
    seedQueued(executions);
    const first = await (await cancel(app)).json();

    // Act
    const response = await cancel(app);

    // Assess
    expect(response.status).toBe(202);
    expect(await response.json()).toEqual(first);
    expect(executions.calls.stop).toHaveLength(1);
    expect(dashscope.cancels).toHaveLength(1);
  });

  it('answers 404 for an unknown generation', async () => {
    // Prepare
    const { app } = setup();

    // Act
    const response = await cancel(app, 'gen-unknown');

    // Assess
    expect(response.status).toBe(404);
    expect((await errorOf(response)).type).toBe('not_found');
  });

  it('answers 404 for an illegal id', async () => {
    // Prepare
    const { app, executions } = setup();

    // Act
    const response = await cancel(app, 'gen.1');

    // Assess
    expect(response.status).toBe(404);
    expect(executions.calls.describe).toEqual([]);
  });

  it('returns an ended generation unchanged, without stopping anything', async () => {
    // Prepare
    const { app, executions, dashscope } = setup();
    executions.seed({ name: 'gen-1', ...succeeded() });

    // Act
    const response = await cancel(app);

    // Assess
    expect(response.status).toBe(202);
    expect(await response.json()).toMatchObject({ id: 'gen-1', status: 'succeeded' });
    expect(executions.calls.stop).toEqual([]);
    expect(dashscope.cancels).toEqual([]);
  });
});

describe('GET /healthz', () => {
  it('answers 200 ok', async () => {
    // Prepare
    const { app } = setup();

    // Act
    const response = await app.request('/healthz');

    // Assess
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'ok' });
  });
});

describe('GET /openapi.json', () => {
  const REQUEST_FIELDS = Object.keys(generationRequestSchema.shape).sort();

  /** Every object anywhere in `value` (the document's schemas may be inline or under components). */
  function objectsIn(value: unknown): Record<string, unknown>[] {
    if (!value || typeof value !== 'object') return [];
    const children = Object.values(value).flatMap(objectsIn);
    return Array.isArray(value) ? children : [value as Record<string, unknown>, ...children];
  }

  /** The schemas whose properties are exactly the request's fields. */
  const requestSchemasIn = (doc: unknown) =>
    objectsIn(doc).filter(
      (node) =>
        node.type === 'object' &&
        typeof node.properties === 'object' &&
        JSON.stringify(Object.keys(node.properties as object).sort()) === JSON.stringify(REQUEST_FIELDS),
    );

  async function document() {
    const { app } = setup();
    const response = await app.request('/openapi.json');
    const doc = (await response.json()) as {
      openapi: string;
      paths: Record<string, Record<string, { responses?: object }>>;
    };
    return { response, doc };
  }

  it('serves an OpenAPI 3.0 document', async () => {
    // Act
    const { response, doc } = await document();

    // Assess
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(doc.openapi).toMatch(/^3\.0\.\d+$/);
    expect(doc).toHaveProperty('info.title');
    expect(doc).toHaveProperty('info.version');
  });

  it('documents the four generation paths and their methods', async () => {
    // Act
    const { doc } = await document();

    // Assess
    const methods = Object.entries(doc.paths).map(([path, item]) => [path, Object.keys(item).sort()]);
    expect(Object.fromEntries(methods)).toEqual(
      expect.objectContaining({
        '/v1/generations': ['get', 'post'],
        '/v1/generations/{id}': ['get'],
        '/v1/generations/{id}/cancel': ['post'],
        '/healthz': ['get'],
      }),
    );
  });

  it('gives every operation its responses', async () => {
    // Act
    const { doc } = await document();

    // Assess
    const operations = Object.values(doc.paths).flatMap((item) => Object.values(item));
    expect(operations.every((operation) => Object.keys(operation.responses ?? {}).length > 0)).toBe(true);
  });

  it("describes the request schema's properties, unknown ones refused", async () => {
    // Act
    const { doc } = await document();

    // Assess
    const requestSchemas = requestSchemasIn(doc);
    expect(requestSchemas).not.toEqual([]);
    expect(requestSchemas.every((node) => node.additionalProperties === false)).toBe(true);
  });

  it('requires only a prompt in the request schema', async () => {
    // Act
    const { doc } = await document();

    // Assess: the output form (inside Generation) lists the defaulted fields as required too.
    expect(requestSchemasIn(doc).map((node) => node.required)).toContainEqual(['prompt']);
  });
});

describe('routing errors', () => {
  it('answers 405 with Allow for a method a path does not serve', async () => {
    // Prepare
    const { app } = setup();

    // Act
    const response = await app.request('/v1/generations', { method: 'DELETE' });

    // Assess
    expect(response.status).toBe(405);
    expect(response.headers.get('Allow')?.split(', ').sort()).toEqual(['GET', 'HEAD', 'POST']);
    expect((await errorOf(response)).type).toBe('method_not_allowed');
  });

  it('answers 405 with Allow: POST for a GET of cancel', async () => {
    // Prepare
    const { app } = setup();

    // Act
    const response = await app.request('/v1/generations/gen-1/cancel');

    // Assess
    expect(response.status).toBe(405);
    expect(response.headers.get('Allow')).toBe('POST');
  });

  it('answers 404 in the error shape for an unknown route', async () => {
    // Prepare
    const { app } = setup();

    // Act
    const response = await app.request('/v2/generations');

    // Assess
    expect(response.status).toBe(404);
    expect(await response.json()).toEqual({
      error: { type: 'not_found', message: 'No route GET /v2/generations' },
    });
  });
});

describe('internal errors', () => {
  it('answers 500 internal_error without the message', async () => {
    // Prepare
    const { app, index } = setup();
    index.failure = new Error('connect ECONNREFUSED db-password=hunter2');

    // Act
    const response = await app.request('/v1/generations/gen-1');

    // Assess
    expect(response.status).toBe(500);
    const text = await response.text();
    expect(JSON.parse(text)).toEqual({ error: { type: 'internal_error', message: 'Internal error' } });
    expect(text).not.toContain('db-password');
  });

  it('logs the error for the operators', async () => {
    // Prepare
    const logged: { message: string; extra?: Record<string, unknown> }[] = [];
    const logger: Logger = { ...silentLogger, error: (message, extra) => logged.push({ message, extra }) };
    const { app, executions } = setup({ logger });
    executions.failure = new Error('connect ECONNREFUSED db-password=hunter2');

    // Act
    await post(app, { prompt: 'a lighthouse' });

    // Assess
    expect(logged).toEqual([
      {
        message: 'Unhandled API error',
        extra: { path: '/v1/generations', reason: 'Error: connect ECONNREFUSED db-password=hunter2' },
      },
    ]);
  });
});

describe('bearer auth', () => {
  const TOKEN = 'local-token-123';

  it('answers 401 without a token', async () => {
    // Prepare
    const { app } = setup({ apiToken: TOKEN });

    // Act
    const response = await app.request('/v1/generations');

    // Assess
    expect(response.status).toBe(401);
    expect((await errorOf(response)).type).toBe('unauthorized');
  });

  it.each([`Bearer ${TOKEN}x`, 'Bearer local-token-124', TOKEN, `Basic ${TOKEN}`])(
    'answers 401 for Authorization: %s',
    async (authorization) => {
      // Prepare
      const { app } = setup({ apiToken: TOKEN });

      // Act
      const response = await app.request('/v1/generations', { headers: { Authorization: authorization } });

      // Assess
      expect(response.status).toBe(401);
    },
  );

  it('answers 200 with the right token', async () => {
    // Prepare
    const { app } = setup({ apiToken: TOKEN });

    // Act
    const response = await app.request('/v1/generations', { headers: { Authorization: `Bearer ${TOKEN}` } });

    // Assess
    expect(response.status).toBe(200);
  });

  it('guards the OpenAPI document too', async () => {
    // Prepare
    const { app } = setup({ apiToken: TOKEN });

    // Act
    const response = await app.request('/openapi.json');

    // Assess
    expect(response.status).toBe(401);
  });

  it('does not start a generation without a token', async () => {
    // Prepare
    const { app, executions } = setup({ apiToken: TOKEN });

    // Act
    await post(app, { prompt: 'a lighthouse' });

    // Assess
    expect(executions.calls.start).toEqual([]);
  });

  it('leaves /healthz open', async () => {
    // Prepare
    const { app } = setup({ apiToken: TOKEN });

    // Act
    const response = await app.request('/healthz');

    // Assess
    expect(response.status).toBe(200);
  });
});

describe('fixes found by review', () => {
  it('replays an Idempotency-Key while the first generation is still running (200, original createdAt)', async () => {
    const { app, executions } = setup();
    const startDate = new Date('2026-03-01T12:00:00.000Z');
    executions.seed({ name: idempotentId('key-running'), input: request(), startDate, status: 'RUNNING' });

    const response = await post(
      app,
      { prompt: 'a lighthouse at dusk' },
      { 'Idempotency-Key': 'key-running' },
    );

    expect(response.status).toBe(200);
    expect(response.headers.get('Idempotent-Replayed')).toBe('true');
    expect(((await response.json()) as { createdAt: string }).createdAt).toBe(startDate.toISOString());
  });

  it('names a bad Idempotency-Key once, as Idempotency-Key', async () => {
    const { app } = setup();

    const response = await post(app, { prompt: 'a lighthouse at dusk' }, { 'Idempotency-Key': 'has space' });

    expect(response.status).toBe(400);
    expect(await fieldsOf(response)).toEqual(['Idempotency-Key']);
  });

  it('serves an OpenAPI document whose every $ref resolves to a component', async () => {
    const { app } = setup();

    const document = (await (await app.request('/openapi.json')).json()) as {
      components: { schemas: Record<string, unknown> };
    };

    const text = JSON.stringify(document);
    const refs = [...text.matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)].map(
      (match) => match[1] ?? '',
    );
    expect(refs.length).toBeGreaterThan(5);
    for (const ref of refs) expect(document.components.schemas[ref]).toBeDefined();
    expect(text).not.toContain('"definitions"');
  });

  it('answers 400 for a cursor that decodes to nothing', async () => {
    const { app } = setup();

    const response = await app.request('/v1/generations?cursor=!!!');

    expect(response.status).toBe(400);
    expect(await fieldsOf(response)).toEqual(['cursor']);
  });
});
