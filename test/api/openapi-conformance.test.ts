import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { type ApiOptions, MAX_BODY_BYTES } from '../../functions/api/app.js';
import { MAX_BATCH_BODY_BYTES } from '../../functions/api/batch-routes.js';
import { openApiDocument } from '../../functions/api/openapi.js';
import type { Clock } from '../../functions/shared/clock.js';
import { generationRequestSchema } from '../../functions/shared/generation-request.js';
import { MemoryBatchIndex, MemoryGenerationIndex } from '../fakes/memory-index.js';
import { createResponseValidator } from '../support/openapi-validator.js';
import { BUCKET, MemoryObjectStore } from './batch-fixtures.js';
import { FakeExecutionService } from './fake-executions.js';
import { apiOver, taskState } from './fixtures.js';

const NOW = Date.parse('2026-03-01T12:34:56.789Z');
const clock: Clock = { now: () => NOW };
const TOKEN = 'local-token-123';

const request = (input: Record<string, unknown> = {}) =>
  generationRequestSchema.parse({ prompt: 'a lighthouse at dusk', ...input });

const task = taskState;

const image = (index: number) => ({
  index,
  key: `generations/gen-ok/${index}.png`,
  bytes: 1234,
  sha256: 'a'.repeat(64),
  contentType: 'image/png',
  seed: 42 + index,
});

/** An app over a fake holding a generation in every state the API can show. */
function setup(options: ApiOptions = {}) {
  const index = new MemoryGenerationIndex();
  const executions = new FakeExecutionService(clock, index);
  const stopDate = new Date('2026-03-01T12:01:00.000Z');
  executions.seed({ name: 'gen-queued', input: request(), lastTask: task() });
  executions.seed({
    name: 'gen-running',
    input: request({ n: 2, webhook_url: 'https://hooks.example.com/x' }),
    lastTask: task({
      status: 'running',
      dashscopeStatus: 'RUNNING',
      progress: { succeeded: 1, failed: 0, total: 2 },
    }),
  });
  executions.seed({
    name: 'gen-ok',
    status: 'SUCCEEDED',
    input: request({ n: 2 }),
    stopDate,
    output: {
      task: task({ status: 'succeeded', dashscopeStatus: 'SUCCEEDED' }),
      result: {
        manifestKey: 'generations/gen-ok/manifest.json',
        status: 'partial',
        images: [image(0)],
        failed: [{ index: 1, type: 'result_rejected', message: 'not a PNG' }],
      },
    },
  });
  executions.seed({
    name: 'gen-failed',
    status: 'FAILED',
    input: request(),
    stopDate,
    error: 'DashScopeTaskFailed',
    cause: 'Algorithm process error',
    lastTask: task({
      status: 'failed',
      dashscopeStatus: 'FAILED',
      error: { type: 'upstream_error', code: 'InternalError.Algo', message: 'Algorithm process error' },
    }),
  });
  executions.seed({ name: 'gen-aborted', status: 'ABORTED', input: request(), stopDate });
  executions.seed({ name: 'gen-timeout', status: 'TIMED_OUT', input: { not: 'a request' }, stopDate });
  executions.seed({
    name: 'gen-expired',
    status: 'FAILED',
    input: request(),
    stopDate,
    error: 'TaskExpiredError',
  });
  const batches = new MemoryBatchIndex(index);
  const objects = new MemoryObjectStore();
  seedBatches(batches, executions);
  return {
    app: apiOver({ executions, index, batches, objects, bucket: BUCKET }, clock, options),
    executions,
    index,
    objects,
  };
}

/**
 * A batch in every state the API can show: `batch-running` (a waiting, a running and a succeeded
 * generation, and a rejected line), `batch-done` (completed, its results written) and a request
 * file's `file-report` (cancelling). The memory fakes apply each write as it is called, so seeding
 * stays synchronous.
 */
function seedBatches(batches: MemoryBatchIndex, executions: FakeExecutionService): void {
  const createdAt = '2026-03-01T12:00:00.000Z';
  const batch = (id: string, extra: Partial<Parameters<MemoryBatchIndex['create']>[0]> = {}) =>
    void batches.create({
      id,
      createdAt,
      source: 'api',
      priority: 'batch',
      total: 1,
      rejected: 0,
      fingerprint: id,
      ...extra,
    });
  batch('batch-running', { total: 5, rejected: 1, metadata: { project: 'foxes' } });
  executions.seed({ name: 'batch-running-1', input: request({ priority: 'batch' }), lastTask: task() });
  executions.seed({
    name: 'batch-running-2',
    input: request({ priority: 'batch' }),
    lastTask: task({ status: 'running', dashscopeStatus: 'RUNNING' }),
  });
  executions.seed({
    name: 'batch-running-4',
    status: 'SUCCEEDED',
    input: request({ priority: 'batch' }),
    stopDate: new Date('2026-03-01T12:01:00.000Z'),
    output: {
      task: task({ status: 'succeeded', dashscopeStatus: 'SUCCEEDED' }),
      result: {
        manifestKey: 'generations/batch-running-4/manifest.json',
        status: 'complete',
        images: [image(0)],
        failed: [],
      },
    },
  });
  batch('batch-done', { source: 'cli', priority: 'interactive' });
  executions.seed({ name: 'batch-done-1', status: 'FAILED', input: request(), error: 'DashScopeTaskFailed' });
  void batches.claimCompletion('batch-done', 'finisher', createdAt, createdAt);
  void batches.complete('batch-done', 'finisher', {
    status: 'completed',
    at: '2026-03-01T12:02:00.000Z',
    resultsKey: 'batches/batch-done/results.jsonl',
    counts: {
      total: 1,
      rejected: 0,
      waiting: 0,
      running: 0,
      succeeded: 0,
      partial: 0,
      failed: 1,
      canceled: 0,
    },
  });
  batch('file-report', {
    source: 'request-file',
    total: 2,
    file: { bucket: BUCKET, key: 'requests/foxes.jsonl', version: 'v1' },
  });
  void batches.markCancelling('file-report');
}

interface Call {
  readonly name: string;
  readonly method: string;
  readonly path: string;
  readonly headers?: Record<string, string>;
  readonly body?: string;
  readonly status: number;
  /** A body posted first to /v1/generations with the same headers (an earlier use of a key). */
  readonly before?: string;
  /** Prepares the fake before the call. */
  readonly arrange?: (world: {
    executions: FakeExecutionService;
    index: MemoryGenerationIndex;
    objects: MemoryObjectStore;
  }) => void;
  readonly options?: ApiOptions;
}

const JSON_TYPE = { 'Content-Type': 'application/json' };
const body = (value: unknown) => JSON.stringify(value);

/** A POST /v1/generations of `payload` (JSON by default). */
const create = (name: string, status: number, payload: string, extra: Partial<Call> = {}): Call => ({
  name,
  method: 'POST',
  path: '/v1/generations',
  headers: JSON_TYPE,
  body: payload,
  status,
  ...extra,
});

const NDJSON_TYPE = { 'Content-Type': 'application/x-ndjson' };

/** A POST /v1/batches of `payload` (JSON by default). */
const createBatch = (name: string, status: number, payload: string, extra: Partial<Call> = {}): Call => ({
  name,
  method: 'POST',
  path: '/v1/batches',
  headers: JSON_TYPE,
  body: payload,
  status,
  ...extra,
});

const BATCH_CALLS: Call[] = [
  createBatch('create a batch', 202, body({ requests: [{ prompt: 'a fox' }, { n: 9 }] })),
  createBatch(
    'create a batch with every setting',
    202,
    body({
      requests: [{ prompt: 'a fox', priority: 'interactive' }],
      priority: 'batch',
      webhook_url: 'https://hooks.example.com/b',
      metadata: { project: 'foxes' },
    }),
  ),
  createBatch('create a batch from NDJSON', 202, '{"prompt": "a fox"}\nnope\n', { headers: NDJSON_TYPE }),
  createBatch('replay a batch', 200, body({ requests: [{ prompt: 'a fox' }] }), {
    headers: { ...JSON_TYPE, 'Idempotency-Key': 'b-1' },
    before: body({ requests: [{ prompt: 'a fox' }] }),
  }),
  createBatch('a batch key with other requests', 409, body({ requests: [{ prompt: 'an owl' }] }), {
    headers: { ...JSON_TYPE, 'Idempotency-Key': 'b-2' },
    before: body({ requests: [{ prompt: 'a fox' }] }),
  }),
  createBatch('an empty batch', 400, body({ requests: [] })),
  createBatch('a batch with no valid request', 400, body({ requests: [{ n: 9 }] })),
  createBatch('a batch with a bad priority', 400, body({ requests: [{ prompt: 'a fox' }], priority: 'now' })),
  createBatch('a batch with a refused webhook_url', 400, '{"prompt": "a fox"}', {
    path: `/v1/batches?webhook_url=${encodeURIComponent('https://169.254.169.254/')}`,
    headers: NDJSON_TYPE,
  }),
  createBatch(
    'a batch body too large',
    413,
    body({ requests: [{ prompt: 'x'.repeat(MAX_BATCH_BODY_BYTES) }] }),
  ),
  createBatch('a batch as text/plain', 415, 'a fox', { headers: { 'Content-Type': 'text/plain' } }),
  { name: 'list batches', method: 'GET', path: '/v1/batches', status: 200 },
  { name: 'list batches, a page', method: 'GET', path: '/v1/batches?limit=1', status: 200 },
  { name: 'list batches, foreign cursor', method: 'GET', path: '/v1/batches?cursor=!!!', status: 400 },
  ...['batch-running', 'batch-done', 'file-report'].map(
    (id): Call => ({ name: `get ${id}`, method: 'GET', path: `/v1/batches/${id}`, status: 200 }),
  ),
  { name: 'get an unknown batch', method: 'GET', path: '/v1/batches/batch-nope', status: 404 },
  { name: 'get a malformed batch id', method: 'GET', path: '/v1/batches/gen-ok', status: 404 },
  {
    name: "a batch's generations",
    method: 'GET',
    path: '/v1/batches/batch-running/generations',
    status: 200,
  },
  {
    name: "a batch's generations, a page of one count",
    method: 'GET',
    path: '/v1/batches/batch-running/generations?status=waiting&limit=1',
    status: 200,
  },
  {
    name: "a batch's generations, bad cursor",
    method: 'GET',
    path: '/v1/batches/batch-running/generations?cursor=x.y',
    status: 400,
  },
  {
    name: "an unknown batch's generations",
    method: 'GET',
    path: '/v1/batches/batch-nope/generations',
    status: 404,
  },
  { name: 'cancel a batch', method: 'POST', path: '/v1/batches/batch-running/cancel', status: 202 },
  { name: 'cancel an ended batch', method: 'POST', path: '/v1/batches/batch-done/cancel', status: 202 },
  { name: 'cancel an unknown batch', method: 'POST', path: '/v1/batches/batch-nope/cancel', status: 404 },
  { name: 'results of an ended batch', method: 'GET', path: '/v1/batches/batch-done/results', status: 200 },
  {
    name: 'results of a running batch',
    method: 'GET',
    path: '/v1/batches/batch-running/results',
    status: 409,
  },
  { name: 'results of an unknown batch', method: 'GET', path: '/v1/batches/batch-nope/results', status: 404 },
  ...[
    ['GET', '/v1/batches'],
    ['POST', '/v1/batches'],
    ['GET', '/v1/batches/batch-done'],
    ['GET', '/v1/batches/batch-done/generations'],
    ['POST', '/v1/batches/batch-done/cancel'],
    ['GET', '/v1/batches/batch-done/results'],
  ].map(
    ([method = 'GET', path = '/']): Call => ({
      name: `401 at ${method} ${path}`,
      method,
      path,
      status: 401,
      options: { apiToken: TOKEN },
    }),
  ),
  { name: 'delete the batches', method: 'DELETE', path: '/v1/batches', status: 405 },
  { name: 'GET of a batch cancel', method: 'GET', path: '/v1/batches/batch-done/cancel', status: 405 },
  {
    name: 'internal error reading a batch',
    method: 'GET',
    path: '/v1/batches/batch-running',
    status: 500,
    arrange: ({ index }) => {
      index.failure = new Error('connect ECONNREFUSED');
    },
  },
  createBatch('internal error writing a batch', 500, body({ requests: [{ prompt: 'a fox' }] }), {
    arrange: ({ objects }) => {
      objects.failure = new Error('connect ECONNREFUSED');
    },
  }),
];

/** Every route, every status it documents, and the undocumented paths and methods. */
const CALLS: Call[] = [
  { name: 'liveness', method: 'GET', path: '/healthz', status: 200 },
  {
    name: 'liveness with a token set',
    method: 'GET',
    path: '/healthz',
    status: 200,
    options: { apiToken: TOKEN },
  },
  { name: 'the document', method: 'GET', path: '/openapi.json', status: 200 },
  create('create', 202, body({ prompt: 'a fox' })),
  create(
    'create with every field',
    202,
    body({
      prompt: 'a fox',
      negative_prompt: 'blur',
      model: 'stable-diffusion-3.5-large-turbo',
      size: '768*1024',
      n: 4,
      steps: 30,
      cfg: 4.5,
      seed: 7,
      shift: 3,
      init_image: 'https://img.example/a.png',
      webhook_url: 'https://hooks.example.com/x',
      webhook_events: ['generation.failed'],
    }),
  ),
  create('replay', 200, body({ prompt: 'a fox' }), {
    headers: { ...JSON_TYPE, 'Idempotency-Key': 'k-1' },
    before: body({ prompt: 'a fox' }),
  }),
  create('Idempotency-Key with another body', 409, body({ prompt: 'another fox' }), {
    headers: { ...JSON_TYPE, 'Idempotency-Key': 'k-2' },
    before: body({ prompt: 'a fox' }),
  }),
  create('invalid body', 400, body({ n: 9 })),
  create('not JSON', 400, '{'),
  create('a JSON array', 400, '[]'),
  create('NUL in the prompt', 400, '{"prompt": "a\\u0000b"}'),
  create('bad Idempotency-Key', 400, body({ prompt: 'a fox' }), {
    headers: { ...JSON_TYPE, 'Idempotency-Key': 'a b' },
  }),
  create('refused webhook_url', 400, body({ prompt: 'a fox', webhook_url: 'https://169.254.169.254/' })),
  create('body too large', 413, body({ prompt: 'x'.repeat(MAX_BODY_BYTES) })),
  create('no content type', 415, body({ prompt: 'a fox' }), { headers: {} }),
  create('text/plain', 415, 'a fox', { headers: { 'Content-Type': 'text/plain' } }),
  { name: 'list', method: 'GET', path: '/v1/generations', status: 200 },
  { name: 'list a page', method: 'GET', path: '/v1/generations?limit=2', status: 200 },
  { name: 'list by status', method: 'GET', path: '/v1/generations?status=failed&limit=50', status: 200 },
  { name: 'list, limit not a number', method: 'GET', path: '/v1/generations?limit=abc', status: 400 },
  { name: 'list, limit too big', method: 'GET', path: '/v1/generations?limit=51', status: 400 },
  {
    name: 'list, cursor too long',
    method: 'GET',
    path: `/v1/generations?cursor=${'x'.repeat(4097)}`,
    status: 400,
  },
  { name: 'list, foreign cursor', method: 'GET', path: '/v1/generations?cursor=!!!', status: 400 },
  { name: 'list, unknown parameter', method: 'GET', path: '/v1/generations?colour=red', status: 400 },
  { name: 'list, unknown status', method: 'GET', path: '/v1/generations?status=done', status: 400 },
  ...['gen-queued', 'gen-running', 'gen-ok', 'gen-failed', 'gen-aborted', 'gen-timeout', 'gen-expired'].map(
    (id): Call => ({ name: `get ${id}`, method: 'GET', path: `/v1/generations/${id}`, status: 200 }),
  ),
  { name: 'get unknown', method: 'GET', path: '/v1/generations/gen-nope', status: 404 },
  { name: 'get illegal id', method: 'GET', path: '/v1/generations/%00..%2F', status: 404 },
  { name: 'cancel running', method: 'POST', path: '/v1/generations/gen-running/cancel', status: 202 },
  { name: 'cancel ended', method: 'POST', path: '/v1/generations/gen-ok/cancel', status: 202 },
  { name: 'cancel unknown', method: 'POST', path: '/v1/generations/gen-nope/cancel', status: 404 },
  ...[
    ['GET', '/v1/generations'],
    ['GET', '/v1/generations/gen-ok'],
    ['POST', '/v1/generations/gen-ok/cancel'],
    ['GET', '/openapi.json'],
  ].map(
    ([method = 'GET', path = '/']): Call => ({
      name: `401 at ${method} ${path}`,
      method,
      path,
      status: 401,
      options: { apiToken: TOKEN },
    }),
  ),
  create('401 on create', 401, body({ prompt: 'a fox' }), {
    headers: { ...JSON_TYPE, Authorization: 'Bearer wrong' },
    options: { apiToken: TOKEN },
  }),

  {
    name: 'authorized list',
    method: 'GET',
    path: '/v1/generations',
    headers: { Authorization: `Bearer ${TOKEN}` },
    status: 200,
    options: { apiToken: TOKEN },
  },
  { name: 'delete a collection', method: 'DELETE', path: '/v1/generations', status: 405 },
  { name: 'put a generation', method: 'PUT', path: '/v1/generations/gen-ok', status: 405 },
  { name: 'GET of cancel', method: 'GET', path: '/v1/generations/gen-ok/cancel', status: 405 },
  { name: 'POST to healthz', method: 'POST', path: '/healthz', status: 405 },
  { name: 'unknown route', method: 'GET', path: '/v2/generations', status: 404 },
  { name: 'unknown deeper route', method: 'GET', path: '/v1/generations/gen-ok/images', status: 404 },
  ...[
    ['GET', '/v1/generations/gen-ok'],
    ['POST', '/v1/generations'],
    ['GET', '/v1/generations'],
    ['POST', '/v1/generations/gen-running/cancel'],
  ].map(
    ([method = 'GET', path = '/']): Call => ({
      name: `internal error on ${method} ${path}`,
      method,
      path,
      headers: JSON_TYPE,
      body: method === 'POST' ? body({ prompt: 'a fox' }) : undefined,
      status: 500,
      arrange: ({ executions, index }) => {
        executions.failure = new Error('connect ECONNREFUSED');
        index.failure = new Error('connect ECONNREFUSED');
      },
    }),
  ),
  ...BATCH_CALLS,
];

describe('every answer conforms to the OpenAPI document', () => {
  const validator = createResponseValidator(openApiDocument() as never);

  beforeAll(() => {
    validator.compileAll();
  });

  it.each(CALLS.map((call) => [call.name, call] as const))('%s', async (_name, call) => {
    // Prepare
    const { app, executions, index, objects } = setup(call.options);
    if (call.before !== undefined) {
      await app.request(call.path, { method: call.method, headers: call.headers, body: call.before });
    }
    call.arrange?.({ executions, index, objects });

    // Act
    const response = await app.request(call.path, {
      method: call.method,
      headers: call.headers,
      body: call.body,
    });

    // Assess
    expect(response.status).toBe(call.status);
    expect(await validator.check(call.method, call.path, response)).toEqual([]);
  });
});

describe('the OpenAPI document', () => {
  const document = openApiDocument() as {
    paths: Record<string, Record<string, { responses: Record<string, unknown>; security?: unknown[] }>>;
    components: { securitySchemes?: Record<string, unknown> };
    security?: unknown[];
  };
  const operations = Object.entries(document.paths).flatMap(([path, item]) =>
    Object.entries(item).map(([method, operation]) => ({ path, method, operation })),
  );

  it('lists every route the app serves, /openapi.json and /healthz included', () => {
    expect(operations.map(({ method, path }) => `${method.toUpperCase()} ${path}`).sort()).toEqual([
      'GET /healthz',
      'GET /openapi.json',
      'GET /v1/batches',
      'GET /v1/batches/{id}',
      'GET /v1/batches/{id}/generations',
      'GET /v1/batches/{id}/results',
      'GET /v1/generations',
      'GET /v1/generations/{id}',
      'POST /v1/batches',
      'POST /v1/batches/{id}/cancel',
      'POST /v1/generations',
      'POST /v1/generations/{id}/cancel',
    ]);
  });

  it('declares its security schemes and requires one of them by default', () => {
    expect(Object.keys(document.components.securitySchemes ?? {}).sort()).toEqual(['bearer', 'sigv4']);
    expect(document.security).toEqual([{ sigv4: [] }, { bearer: [] }]);
  });

  it.each(
    operations
      .filter(({ path }) => path !== '/healthz')
      .map(({ method, path, operation }) => [method, path, operation] as const),
  )('%s %s declares 401, 500 and a default response', (_method, _path, operation) => {
    expect(Object.keys(operation.responses)).toEqual(expect.arrayContaining(['401', '500', 'default']));
  });

  it('leaves /healthz open', () => {
    expect(document.paths['/healthz']?.get?.security).toEqual([]);
  });

  it('states the cursor length limit and the Idempotency-Key rules', () => {
    const text = JSON.stringify(document.paths['/v1/generations']);
    expect(text).toContain('"maxLength":4096');
    expect(text).toMatch(/"name":"Idempotency-Key".*"pattern"/);
    expect(text).toMatch(/Idempotency-Key.*409/);
  });
});

describe('the response validator', () => {
  const validator = createResponseValidator(openApiDocument() as never);
  const answer = (status: number, value: unknown, headers: Record<string, string> = {}) =>
    new Response(JSON.stringify(value), {
      status,
      headers: { 'content-type': 'application/json', ...headers },
    });

  it('finds a body that breaks its schema, through a $ref', async () => {
    const problems = await validator.check('GET', '/v1/generations/gen-1', answer(200, { id: 'gen-1' }));
    expect(problems.join('\n')).toMatch(/body does not match/);
  });

  it('finds a property the schema does not declare', async () => {
    const problems = await validator.check('GET', '/healthz', answer(200, { status: 'ok', extra: 1 }));
    expect(problems.join('\n')).toMatch(/additional/);
  });

  it('finds a status the operation does not declare, when there is no default to fall back on', async () => {
    const validatorWithoutDefault = createResponseValidator({
      paths: { '/x': { get: { responses: { 200: { description: 'ok' } } } } },
      components: { schemas: {} },
    });
    const problems = await validatorWithoutDefault.check('GET', '/x', answer(418, {}));
    expect(problems.join('\n')).toMatch(/status not in the operation's responses/);
  });

  it('finds a 401 without its WWW-Authenticate header', async () => {
    const problems = await validator.check(
      'GET',
      '/v1/generations',
      answer(401, { error: { type: 'unauthorized', message: 'no' } }),
    );
    expect(problems.join('\n')).toMatch(/WWW-Authenticate missing/);
  });

  it('finds a 405 without Allow', async () => {
    const problems = await validator.check(
      'DELETE',
      '/v1/generations',
      answer(405, { error: { type: 'method_not_allowed', message: 'no' } }),
    );
    expect(problems.join('\n')).toMatch(/405 without Allow/);
  });
});

describe('random requests', () => {
  const validator = createResponseValidator(openApiDocument() as never);
  const segment = fc.oneof(
    fc.constantFrom(
      'gen-ok',
      'gen-running',
      'gen-nope',
      'batch-running',
      'batch-done',
      'cancel',
      '',
      '..',
      '%00',
      '%F0',
      'v1',
      'generations',
    ),
    fc.string({ maxLength: 12 }).map(encodeURIComponent),
  );
  const path = fc.oneof(
    fc.constantFrom(
      '/healthz',
      '/openapi.json',
      '/v1/generations',
      '/v1/generations/gen-ok',
      '/v1/generations/gen-ok/cancel',
      '/v1/batches',
      '/v1/batches/batch-running',
      '/v1/batches/batch-running/generations',
      '/v1/batches/batch-running/cancel',
      '/v1/batches/batch-done/results',
      '/v1/batches/file-report/results',
    ),
    fc.array(segment, { minLength: 1, maxLength: 4 }).map((parts) => `/${parts.join('/')}`),
    segment.map((id) => `/v1/generations/${id}`),
    segment.map((id) => `/v1/generations/${id}/cancel`),
    segment.map((id) => `/v1/batches/${id}`),
    fc
      .tuple(segment, fc.constantFrom('generations', 'cancel', 'results'))
      .map(([id, action]) => `/v1/batches/${id}/${action}`),
  );
  const query = fc.dictionary(
    fc.constantFrom('status', 'limit', 'cursor', 'x'),
    fc.oneof(fc.string({ maxLength: 10 }), fc.constantFrom('queued', '1', '50', '0', 'abc')),
    { maxKeys: 3 },
  );
  const jsonBody = fc.oneof(
    fc.jsonValue({ maxDepth: 2 }).map((value) => JSON.stringify(value)),
    fc
      .record({ prompt: fc.string({ maxLength: 20 }), n: fc.integer({ min: -1, max: 5 }) })
      .map((v) => JSON.stringify(v)),
    fc
      .array(fc.record({ prompt: fc.string({ maxLength: 20 }), n: fc.integer({ min: -1, max: 5 }) }), {
        maxLength: 3,
      })
      .map((requests) => JSON.stringify({ requests })),
    fc.string({ maxLength: 30 }),
  );
  const headers = fc.record(
    {
      'Content-Type': fc.constantFrom(
        'application/json',
        'application/json; charset=utf-8',
        'application/x-ndjson',
        'text/plain',
        'application/xml',
      ),
      'Idempotency-Key': fc.oneof(fc.constantFrom('k', 'a b', ''), fc.stringMatching(/^[\x21-\x7e]{1,20}$/)),
      Authorization: fc.constantFrom('Bearer local-token-123', 'Bearer nope', 'Basic x'),
    },
    { requiredKeys: [] },
  );
  const call = fc.record({
    method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH'),
    path,
    query,
    body: jsonBody,
    headers,
    auth: fc.boolean(),
  });

  it('always get an answer the document describes', async () => {
    await fc.assert(
      fc.asyncProperty(call, async ({ method, path, query, body, headers, auth }) => {
        const { app } = setup(auth ? { apiToken: TOKEN } : {});
        const url = `${path}${Object.keys(query).length ? `?${new URLSearchParams(query)}` : ''}`;
        const response = await app.request(url, {
          method,
          headers,
          body: method === 'GET' ? undefined : body,
        });
        expect(response.status).toBeLessThan(500);
        expect(await validator.check(method, url, response)).toEqual([]);
      }),
      { numRuns: 1000 },
    );
  }, 600_000);
});
