import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import * as z from 'zod';
import { HTTP_ERROR_TYPES, HttpError, invalidFields, invalidInput } from '../../functions/api/http-error.js';
import { errorBodySchema } from '../../functions/api/schemas.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const functionsDir = path.join(root, 'functions');

/** Every TypeScript source under functions/, by path relative to the root. */
function sources(): Map<string, string> {
  const found = new Map<string, string>();
  for (const name of readdirSync(functionsDir, { recursive: true, encoding: 'utf8' })) {
    if (!/\.tsx?$/.test(name)) continue;
    const file = path.join(functionsDir, name);
    found.set(path.relative(root, file).split(path.sep).join('/'), readFileSync(file, 'utf8'));
  }
  return found;
}

/** The retired HTTP error vocabularies: Hono's exception and the API's own former class. */
const RETIRED = [/\bHTTPException\b/, /hono\/http-exception/, /\bApiError\b/];

/** Which of the retired names a source uses. */
const retiredIn = (source: string) => RETIRED.filter((pattern) => pattern.test(source)).map(String);

/** The files that register a Hono error (`onError`) or not-found (`notFound`) handler. */
const filesCalling = (method: string) =>
  [...sources()].filter(([, source]) => source.includes(`.${method}(`)).map(([file]) => file);

describe('one HTTP error vocabulary', () => {
  it('is found by the check when a file uses a retired one', () => {
    expect(retiredIn("import { HTTPException } from 'hono/http-exception';")).toHaveLength(2);
    expect(retiredIn('throw new ApiError(404, "not_found", "No such")')).toHaveLength(1);
    expect(retiredIn('throw new HttpError(404, "not_found", "No such")')).toEqual([]);
  });

  it('is the only one in functions/: no HTTPException, no ApiError', () => {
    const uses = [...sources()]
      .map(([file, source]) => [file, retiredIn(source)] as const)
      .filter(([, found]) => found.length > 0);

    expect(sources().size).toBeGreaterThan(50);
    expect(uses).toEqual([]);
  });

  it('is rendered in two places only: JSON for the API, pages for the console', () => {
    expect(filesCalling('onError').sort()).toEqual([
      'functions/api/api-errors.ts',
      'functions/api/console/error-pages.tsx',
    ]);
    expect(filesCalling('notFound')).toEqual(['functions/api/api-errors.ts']);
  });
});

describe('HttpError', () => {
  it('has the one error shape as its body, details only when it has some', () => {
    // Prepare
    const plain = new HttpError(404, 'not_found', 'No generation "gen-1"');
    const refused = new HttpError(400, 'invalid_request', 'Invalid query: limit: must be a number', {
      details: [{ field: 'limit', message: 'must be a number' }],
    });

    // Act
    const bodies = [plain.toBody(), refused.toBody()];

    // Assess
    expect(JSON.stringify(bodies[0])).toBe(
      '{"error":{"type":"not_found","message":"No generation \\"gen-1\\""}}',
    );
    expect(JSON.stringify(bodies[1])).toBe(
      '{"error":{"type":"invalid_request","message":"Invalid query: limit: must be a number","details":[{"field":"limit","message":"must be a number"}]}}',
    );
    for (const body of bodies) expect(errorBodySchema.strict().safeParse(body).success).toBe(true);
  });

  it('keeps its status, stable type and headers, and is an Error with its own name', () => {
    const error = new HttpError(401, 'unauthorized', 'Sign in', {
      headers: { 'WWW-Authenticate': 'Bearer' },
    });

    expect(error).toBeInstanceOf(Error);
    expect([error.name, error.status, error.type, error.message]).toEqual([
      'HttpError',
      401,
      'unauthorized',
      'Sign in',
    ]);
    expect(error.headers).toEqual({ 'WWW-Authenticate': 'Bearer' });
    expect(new HttpError(500, 'internal_error', 'Internal error').headers).toEqual({});
  });

  it('has a fixed list of types, each in snake_case', () => {
    expect(new Set(HTTP_ERROR_TYPES).size).toBe(HTTP_ERROR_TYPES.length);
    for (const type of HTTP_ERROR_TYPES) expect(type).toMatch(/^[a-z]+(_[a-z]+)*$/);
  });
});

describe('invalid input', () => {
  it('lists every refused field in the message and in details', () => {
    const error = invalidFields('request', [
      { field: 'prompt', message: 'is required' },
      { field: 'n', message: 'must be an integer' },
    ]);

    expect([error.status, error.type]).toEqual([400, 'invalid_request']);
    expect(error.message).toBe('Invalid request: prompt: is required; n: must be an integer');
    expect(error.details).toEqual([
      { field: 'prompt', message: 'is required' },
      { field: 'n', message: 'must be an integer' },
    ]);
  });

  it('names a refused header by its name', () => {
    const parsed = z.string().min(1).safeParse('');
    if (parsed.success) throw new Error('The schema should refuse an empty string');

    const error = invalidInput(parsed.error, 'header', 'Idempotency-Key');

    expect(error.details?.map((detail) => detail.field)).toEqual(['Idempotency-Key']);
    expect(error.message).toMatch(/^Invalid header: Idempotency-Key: /);
  });
});
