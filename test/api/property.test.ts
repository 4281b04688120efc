import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createApiApp } from '../../functions/api/app.js';
import type { Clock } from '../../functions/shared/clock.js';
import {
  generationRequestSchema,
  MAX_SEED,
  MODELS,
  SIDES,
} from '../../functions/shared/generation-request.js';
import { silentLogger } from '../../functions/shared/logger.js';
import { MemoryGenerationIndex } from '../fakes/memory-index.js';
import { batchWorld } from './batch-fixtures.js';
import { FakeExecutionService } from './fake-executions.js';
import { fakePresign } from './fixtures.js';

/** Thousands of requests on a shared, busy machine: a bound for a hang, not a speed target. */
const PROPERTY_TIMEOUT_MS = 600_000;

const clock: Clock = { now: () => Date.parse('2026-03-01T12:34:56.789Z') };
const FIELDS = Object.keys(generationRequestSchema.shape);

/** Any JSON value, small enough to stay far under the body limit. */
const anyJson = fc.jsonValue({ maxDepth: 3 });

/** Values a client might plausibly put in a field, right or wrong. */
const fieldValue = fc.oneof(
  anyJson,
  fc.string({ maxLength: 30 }),
  fc.integer({ min: -10, max: MAX_SEED + 10 }),
  fc.double({ noNaN: true, min: -50, max: 50 }),
  fc.constantFrom(
    ...MODELS,
    '1024*1024',
    '512*768',
    '1024x1024',
    '',
    ' ',
    'https://img.example/a.png',
    0,
    1,
    4,
  ),
);

const validRequest = fc.record(
  {
    prompt: fc.string({ minLength: 1, maxLength: 120 }).filter((prompt) => prompt.trim().length > 0),
    negative_prompt: fc.string({ maxLength: 60 }),
    model: fc.constantFrom(...MODELS),
    size: fc.tuple(fc.constantFrom(...SIDES), fc.constantFrom(...SIDES)).map(([w, h]) => `${w}*${h}`),
    n: fc.integer({ min: 1, max: 4 }),
    steps: fc.integer({ min: 1, max: 500 }),
    cfg: fc.double({ noNaN: true, min: 0.01, max: 20 }),
    seed: fc.integer({ min: 0, max: MAX_SEED - 3 }),
    shift: fc.double({ noNaN: true, min: 0.01, max: 20 }),
    init_image: fc.constantFrom('https://img.example/a.png', 'http://localhost:9000/b.jpg'),
  },
  { requiredKeys: ['prompt'] },
);

/** Objects built from the known field names, each with a random value (often of the wrong type). */
const knownFields = fc.dictionary(fc.constantFrom(...FIELDS), fieldValue, { maxKeys: FIELDS.length });

/** A valid request plus keys the API does not know (or known keys with random values). */
const extraKeys = fc
  .tuple(
    validRequest,
    fc.dictionary(fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom(...FIELDS)), anyJson),
  )
  .map(([request, extra]) => ({ ...request, ...extra }));

const body = fc.oneof(
  anyJson.map((value) => ({ kind: 'any' as const, value })),
  knownFields.map((value) => ({ kind: 'any' as const, value })),
  extraKeys.map((value) => ({ kind: 'any' as const, value })),
  validRequest.map((value) => ({ kind: 'valid' as const, value })),
);

/** The API over an empty fake, ids numbered from 1. */
function newApp() {
  let count = 0;
  return createApiApp({
    executions: new FakeExecutionService(clock),
    index: new MemoryGenerationIndex(),
    presign: fakePresign,
    clock,
    logger: silentLogger,
    newId: () => `gen-${++count}`,
  });
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

describe('POST /v1/generations with random bodies', () => {
  it(
    'never fails with a 5xx, names the offending fields, and accepts valid requests',
    async () => {
      // Prepare
      const app = newApp();

      // Act + Assess
      await fc.assert(
        fc.asyncProperty(body, async ({ kind, value }) => {
          const response = await app.request('/v1/generations', {
            method: 'POST',
            headers: { 'Content-Type': 'application/json' },
            body: JSON.stringify(value),
          });
          const answer = (await response.json()) as {
            error?: { details?: { field: string }[] };
          };

          expect([202, 400]).toContain(response.status);
          if (kind === 'valid') expect(response.status).toBe(202);
          if (response.status === 202) return;

          const fields = (answer.error?.details ?? []).map((detail) => detail.field);
          expect(fields).not.toEqual([]);
          const allowed = isObject(value) ? new Set([...Object.keys(value), 'prompt']) : new Set(['(body)']);
          // A nested problem (`webhook_events.0`) is named by a path that starts at the top-level key.
          const namesAllowedKey = (field: string) =>
            allowed.has(field) || [...allowed].some((key) => field.startsWith(`${key}.`));
          expect(fields.filter((field) => !namesAllowedKey(field))).toEqual([]);
        }),
        { numRuns: 5000 },
      );
    },
    PROPERTY_TIMEOUT_MS,
  );
});

/** zod's own English messages start like these; the project's start with a lower-case verb. */
const ZOD_DEFAULT =
  /Invalid input|Invalid option|Invalid string|Invalid (URL|email|ISO|UUID)|Too (big|small)|Unrecognized key|expected .*, received|Number must be/;

/** Every message of an error answer: the summary and each detail. */
function messagesOf(answer: { error?: { message: string; details?: { message: string }[] } }): string[] {
  return [answer.error?.message ?? '', ...(answer.error?.details ?? []).map((detail) => detail.message)];
}

describe('no zod default message reaches a client', () => {
  const app = newApp();

  const expectProjectWords = (json: unknown) => {
    const answer = json as { error?: { message: string; details?: { message: string }[] } };
    for (const message of messagesOf(answer)) expect(message).not.toMatch(ZOD_DEFAULT);
    for (const detail of answer.error?.details ?? []) expect(detail.message).toMatch(/^[a-z(]/);
  };

  it(
    'in answers to random bodies',
    async () => {
      await fc.assert(
        fc.asyncProperty(body, async ({ value }) => {
          const response = await app.request('/v1/generations', {
            method: 'POST',
            headers: { 'Content-Type': 'application/json' },
            body: JSON.stringify(value),
          });
          expectProjectWords(await response.json());
        }),
        { numRuns: 1000 },
      );
    },
    PROPERTY_TIMEOUT_MS,
  );

  it(
    'in answers to random list queries',
    async () => {
      const param = fc.oneof(
        fc.constantFrom('status', 'limit', 'cursor'),
        fc.string({ maxLength: 8 }).filter((key) => key !== ''),
      );
      const paramValue = fc.oneof(
        fc.string({ maxLength: 20 }),
        fc.constantFrom(
          'abc',
          '0',
          '51',
          '1.5',
          '-1',
          'NaN',
          'Infinity',
          '1e3',
          '',
          'queued',
          'x'.repeat(5000),
        ),
      );
      await fc.assert(
        fc.asyncProperty(fc.dictionary(param, paramValue, { maxKeys: 4 }), async (query) => {
          const response = await app.request(`/v1/generations?${new URLSearchParams(query)}`);
          expect([200, 400]).toContain(response.status);
          expectProjectWords(await response.json());
        }),
        { numRuns: 1000 },
      );
    },
    PROPERTY_TIMEOUT_MS,
  );

  it(
    'in answers to random Idempotency-Key headers',
    async () => {
      const key = fc.oneof(fc.string({ maxLength: 300 }), fc.constantFrom('', 'a b', 'x'.repeat(256)));
      await fc.assert(
        fc.asyncProperty(key, async (idempotencyKey) => {
          // A header value cannot hold control characters or non-Latin-1 text; those never arrive.
          fc.pre(/^[\x20-\x7e]*$/.test(idempotencyKey));
          const response = await app.request('/v1/generations', {
            method: 'POST',
            headers: { 'Content-Type': 'application/json', 'Idempotency-Key': idempotencyKey },
            body: JSON.stringify({ prompt: 'a fox' }),
          });
          expectProjectWords(await response.json());
        }),
        { numRuns: 500 },
      );
    },
    PROPERTY_TIMEOUT_MS,
  );

  it('names limit and the reason for ?limit=abc', async () => {
    const answer = (await (await app.request('/v1/generations?limit=abc')).json()) as {
      error: { details: { field: string; message: string }[] };
    };
    expect(answer.error.details).toEqual([{ field: 'limit', message: 'must be a number' }]);
  });

  it('names cursor and its length limit for a long cursor', async () => {
    const answer = (await (await app.request(`/v1/generations?cursor=${'x'.repeat(4097)}`)).json()) as {
      error: { details: { field: string; message: string }[] };
    };
    expect(answer.error.details).toEqual([{ field: 'cursor', message: 'must be at most 4096 characters' }]);
  });
});

describe('POST /v1/batches with random bodies', () => {
  /** A request line: valid, a known field gone wrong, anything at all. */
  const line = fc.oneof(validRequest, knownFields, extraKeys, anyJson);
  const metadata = fc.oneof(
    fc.dictionary(fc.string({ maxLength: 70 }), fc.oneof(fc.string({ maxLength: 20 }), anyJson), {
      maxKeys: 18,
    }),
    anyJson,
  );
  const settings = fc.record(
    {
      priority: fc.oneof(fc.constantFrom('interactive', 'batch', 'urgent', ''), anyJson),
      webhook_url: fc.oneof(
        fc.constantFrom(
          'https://hooks.example.com/b',
          'https://169.254.169.254/',
          'http://x.example/',
          'nope',
          '',
        ),
        anyJson,
      ),
      metadata,
    },
    { requiredKeys: [] },
  );
  const jsonBody = fc.oneof(
    fc
      .tuple(fc.array(line, { maxLength: 8 }), settings)
      .map(([requests, rest]) => JSON.stringify({ requests, ...rest })),
    fc.record({ requests: anyJson }, { requiredKeys: [] }).map((value) => JSON.stringify(value)),
    anyJson.map((value) => JSON.stringify(value)),
    fc.string({ maxLength: 40 }),
  );
  const ndjsonBody = fc
    .tuple(
      fc.array(
        fc.oneof(
          line.map((value) => JSON.stringify(value)),
          fc.constantFrom('', '   ', '{', 'null', '[]', '\u0000'),
          fc.string({ maxLength: 20 }),
        ),
        { maxLength: 8 },
      ),
      fc.constantFrom('\n', '\r\n'),
    )
    .map(([lines, separator]) => lines.join(separator));
  const ndjsonQuery = fc.dictionary(
    fc.oneof(fc.constantFrom('priority', 'webhook_url', 'metadata'), fc.string({ maxLength: 8 })),
    fc.oneof(
      fc.string({ maxLength: 20 }),
      fc.constantFrom('interactive', 'batch', 'https://hooks.example.com/b'),
    ),
    { maxKeys: 3 },
  );
  const call = fc.oneof(
    jsonBody.map((body) => ({ type: 'application/json', query: {}, body })),
    fc.tuple(ndjsonBody, ndjsonQuery).map(([body, query]) => ({ type: 'application/x-ndjson', query, body })),
  );

  it(
    "never fail with a 5xx, and name what they refuse in the project's words",
    async () => {
      // Prepare
      const { app } = batchWorld(Date.parse('2026-03-01T12:34:56.789Z'));

      // Act + Assess
      await fc.assert(
        fc.asyncProperty(call, async ({ type, query, body }) => {
          const search = Object.keys(query).length > 0 ? `?${new URLSearchParams(query)}` : '';
          const response = await app.request(`/v1/batches${search}`, {
            method: 'POST',
            headers: { 'Content-Type': type },
            body,
          });
          expect([202, 400]).toContain(response.status);
          if (response.status === 202) return;
          const answer = (await response.json()) as {
            error: { message: string; details?: { message: string }[] };
          };
          expect(answer.error.details ?? []).not.toEqual([]);
          for (const message of messagesOf(answer)) expect(message).not.toMatch(ZOD_DEFAULT);
        }),
        { numRuns: 1000 },
      );
    },
    PROPERTY_TIMEOUT_MS,
  );
});
