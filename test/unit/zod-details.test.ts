import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as z from 'zod';
import { InvalidRequestError } from '../../functions/shared/errors.js';
import { formatIssues, generationRequestSchema } from '../../functions/shared/generation-request.js';
import { parseEvent } from '../../functions/shared/parse-event.js';
import { submitInputSchema } from '../../functions/shared/workflow-state.js';
import { detailsOf, projectIssueMessage } from '../../functions/shared/zod-details.js';
import { parseRequestFile } from '../../functions/trigger/request-file.js';

/** zod's own English messages start like these; the project's start with a lower-case verb. */
const ZOD_DEFAULT =
  /Invalid input|Invalid option|Invalid string|Invalid (URL|email|ISO|UUID)|Too (big|small)|Unrecognized key|expected .*, received|Number must be/;

const messagesOf = (schema: z.ZodType, value: unknown) =>
  detailsOf(schema.safeParse(value).error ?? new z.ZodError([])).map((detail) => detail.message);

describe('projectIssueMessage', () => {
  it.each([
    ['a missing field', z.object({ a: z.string() }), {}, 'is required'],
    ['a wrong type', z.object({ a: z.string() }), { a: 1 }, 'must be a string'],
    ['NaN from a coerced number', z.object({ a: z.coerce.number() }), { a: 'abc' }, 'must be a number'],
    ['a fraction for an integer', z.object({ a: z.int() }), { a: 1.5 }, 'must be an integer'],
    ['a long string', z.object({ a: z.string().max(3) }), { a: 'abcd' }, 'must be at most 3 characters'],
    ['an empty string', z.object({ a: z.string().min(1) }), { a: '' }, 'must not be empty'],
    ['a short string', z.object({ a: z.string().min(3) }), { a: 'ab' }, 'must be at least 3 characters'],
    ['a big number', z.object({ a: z.number().max(5) }), { a: 6 }, 'must be at most 5'],
    ['a number not above a bound', z.object({ a: z.number().gt(0) }), { a: 0 }, 'must be greater than 0'],
    ['a long list', z.object({ a: z.array(z.int()).max(1) }), { a: [1, 2] }, 'must have at most 1 items'],
    ['an empty list', z.object({ a: z.array(z.int()).min(1) }), { a: [] }, 'must not be empty'],
    ['an unknown option', z.object({ a: z.enum(['x', 'y']) }), { a: 'z' }, 'must be one of "x", "y"'],
    ['a wrong literal', z.object({ a: z.literal('ok') }), { a: 'no' }, 'must be "ok"'],
    ['a bad URL', z.object({ a: z.url() }), { a: 'nope' }, 'must be a URL'],
    [
      'a bad date-time',
      z.object({ a: z.iso.datetime() }),
      { a: 'yesterday' },
      'must be an ISO 8601 date-time',
    ],
    ['a pattern', z.object({ a: z.string().regex(/^x$/) }), { a: 'y' }, 'has the wrong format'],
    [
      'a refinement without message',
      z.object({ a: z.string().refine(() => false) }),
      { a: 'y' },
      'is invalid',
    ],
    [
      'no union member',
      z.object({ a: z.union([z.string(), z.int()]) }),
      { a: true },
      'matches none of the allowed forms',
    ],
  ])('words %s as the project does', (_label, schema, value, message) => {
    expect(messagesOf(schema, value)).toEqual([message]);
  });

  it('has a message for every issue code', () => {
    const codes = [
      'invalid_type',
      'too_big',
      'too_small',
      'invalid_format',
      'not_multiple_of',
      'unrecognized_keys',
      'invalid_union',
      'invalid_key',
      'invalid_element',
      'invalid_value',
      'custom',
    ];
    for (const code of codes) {
      const message = projectIssueMessage({
        code,
        input: 1,
        path: [],
        keys: [],
        values: [],
        origin: 'number',
      } as never);
      expect(message).toMatch(/^[a-z]/);
    }
  });

  it('leaves a schema’s own message alone', () => {
    expect(messagesOf(z.object({ a: z.int('needs a whole number') }), { a: 'x' })).toEqual([
      'needs a whole number',
    ]);
  });
});

describe('no zod default message in any way a request comes in', () => {
  const anything = fc.dictionary(
    fc.constantFrom(...Object.keys(generationRequestSchema.shape), 'other'),
    fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.string({ maxLength: 3000 }), fc.integer(), fc.double()),
  );

  it('request bodies and events: the request schema', () => {
    fc.assert(
      fc.property(fc.oneof(anything, fc.jsonValue({ maxDepth: 2 })), (value) => {
        for (const message of messagesOf(generationRequestSchema, value))
          expect(message).not.toMatch(ZOD_DEFAULT);
      }),
      { numRuns: 2000 },
    );
  }, 600_000);

  it('request files: every rejected line', () => {
    fc.assert(
      fc.property(fc.array(anything, { maxLength: 5 }), (lines) => {
        const text = lines.map((line) => JSON.stringify(line)).join('\n');
        for (const parsed of parseRequestFile('requests/batch.jsonl', text)) {
          if (!('error' in parsed)) continue;
          expect(parsed.error.message).not.toMatch(ZOD_DEFAULT);
          for (const detail of parsed.error.details) expect(detail.message).not.toMatch(ZOD_DEFAULT);
        }
      }),
      { numRuns: 500 },
    );
  }, 600_000);

  it('workflow events: the cause a bad execution input fails with', () => {
    fc.assert(
      fc.property(anything, (request) => {
        try {
          parseEvent(submitInputSchema, { id: 'gen-1', request });
        } catch (error) {
          expect(error).toBeInstanceOf(InvalidRequestError);
          expect((error as Error).message).not.toMatch(ZOD_DEFAULT);
        }
      }),
      { numRuns: 500 },
    );
  }, 600_000);

  it('the CLI: formatIssues', () => {
    const parsed = generationRequestSchema.safeParse({ prompt: 5, n: 'x', model: 'y', size: 1 });
    expect(formatIssues(parsed.error!)).toBe(
      'prompt: must be a string; model: must be one of "stable-diffusion-3.5-large", "stable-diffusion-3.5-large-turbo"; size: must be a string; n: must be an integer',
    );
  });
});
