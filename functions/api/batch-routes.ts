import type { Context, Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import * as z from 'zod';
import { BatchConflictError, batchIdSchema, COUNT_KEYS, MAX_BATCH_LINES } from '../shared/batch.js';
import type { BatchLine } from '../shared/batch-lines.js';
import type { ApiOptions } from './api-options.js';
import {
  type BatchesDeps,
  batchOptionsSchema,
  cancelBatch,
  checkBatchLine,
  createApiBatch,
  createBatchBodySchema,
  getBatch,
  listBatches,
  ndjsonLines,
} from './batches.js';
import {
  decodeCursor,
  decodeLineCursor,
  encodeCursor,
  encodeLineCursor,
  InvalidCursorError,
} from './cursor.js';
import { createHeadersOf } from './generation-routes.js';
import { listGenerationViews } from './generations.js';
import { HttpError, invalidFields, invalidInput } from './http-error.js';
import { pageQuerySchema } from './schemas.js';

/** The largest batch body: 10,000 requests of ~500 bytes, under Lambda's 6 MB payload. */
export const MAX_BATCH_BODY_BYTES = 5 * 1024 * 1024;

const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true });

/** `GET /v1/batches`: a page of batches. */
export const batchPageQuerySchema = pageQuerySchema;

export const batchLinesQuerySchema = batchPageQuerySchema.extend({
  status: z.enum(COUNT_KEYS, `must be one of ${COUNT_KEYS.join(', ')}`).optional(),
});

/** The NDJSON form's batch-wide settings, in the query. */
export const batchNdjsonQuerySchema = z.strictObject({
  priority: batchOptionsSchema.shape.priority,
  webhook_url: batchOptionsSchema.shape.webhook_url,
});

/**
 * The batch routes of docs/api.md: create (JSON or NDJSON; 202, or 200 with `Idempotent-Replayed`),
 * list, get, its generations, cancel and its results link.
 */
export function mountBatchRoutes(
  app: Hono,
  deps: BatchesDeps,
  options: Pick<ApiOptions, 'callerOf' | 'webhookPolicy'>,
): void {
  app.post(
    '/v1/batches',
    bodyLimit({
      maxSize: MAX_BATCH_BODY_BYTES,
      onError: () => {
        throw new HttpError(
          413,
          'payload_too_large',
          `The request body is over ${MAX_BATCH_BODY_BYTES} bytes`,
        );
      },
    }),
    async (c) => {
      const { values, settings } = await readBatchBody(c);
      if (values.length > MAX_BATCH_LINES) {
        throw invalidFields('request', [
          { field: '(body)', message: `holds at most ${MAX_BATCH_LINES} requests` },
        ]);
      }
      // A line's number names its generation (`<batch id>-<line>`): blank NDJSON lines count, so
      // a request far down a mostly blank body would get a number no batch line may have.
      if (values.some(({ line }) => line > MAX_BATCH_LINES)) {
        throw invalidFields('request', [
          { field: '(body)', message: `has a request after line ${MAX_BATCH_LINES} (blank lines count)` },
        ]);
      }
      if (settings.webhook_url !== undefined) {
        const problem = checkBatchLine({ prompt: 'x', webhook_url: settings.webhook_url }, 0, {
          ...lineOptions(deps, options, 'batch'),
        });
        if ('error' in problem)
          throw invalidFields('request', [
            { field: 'webhook_url', message: problem.error.message.replace(/^line 0: webhook_url: /, '') },
          ]);
      }
      const lineChecks = lineOptions(deps, options, settings.priority ?? 'batch');
      const lines: BatchLine[] = values.map(({ line, value, notJson }) =>
        notJson !== undefined
          ? {
              line,
              error: {
                type: 'invalid_request',
                message: `line ${line}: is not valid JSON (${notJson})`,
                details: [{ field: '(line)', message: `is not valid JSON (${notJson})` }],
              },
            }
          : checkBatchLine(value, line, lineChecks),
      );
      // Nothing to run: refused whole, every line with its reason (the first 100).
      if (lines.every((line) => 'error' in line)) {
        throw invalidFields(
          'request',
          lines.slice(0, 100).map((line) => ({
            field: `requests[${line.line - 1}]`,
            message: 'error' in line ? line.error.message : '',
          })),
        );
      }
      const { idempotencyKey, source } = createHeadersOf(c);
      try {
        const created = await createApiBatch(
          lines,
          { ...settings, idempotencyKey, caller: options.callerOf?.(c), source: source ?? 'api' },
          deps,
        );
        return c.json(
          { ...created.batch, rejected: created.rejected },
          created.replayed ? 200 : 202,
          created.replayed ? { 'Idempotent-Replayed': 'true' } : {},
        );
      } catch (error) {
        if (error instanceof BatchConflictError) {
          throw new HttpError(
            409,
            'conflict',
            'This Idempotency-Key was already used with different requests',
          );
        }
        throw error;
      }
    },
  );

  app.get('/v1/batches', async (c) => {
    const query = batchPageQuerySchema.safeParse(c.req.query());
    if (!query.success) throw invalidInput(query.error, 'query');
    let after: { createdAt: string; id: string } | undefined;
    try {
      after = query.data.cursor ? decodeCursor(query.data.cursor, undefined) : undefined;
    } catch (error) {
      if (!(error instanceof InvalidCursorError)) throw error;
      throw invalidFields('query', [{ field: 'cursor', message: error.message }]);
    }
    const page = await listBatches({ limit: query.data.limit, after }, deps);
    return c.json({
      data: page.data,
      ...(page.more && page.last ? { nextCursor: encodeCursor(undefined, page.last) } : {}),
    });
  });

  app.get('/v1/batches/:id', async (c) => {
    const id = c.req.param('id');
    const batch = batchIdSchema.safeParse(id).success ? await getBatch(id, deps) : undefined;
    if (!batch) throw noBatch(id);
    return c.json(batch);
  });

  app.get('/v1/batches/:id/generations', async (c) => {
    const id = c.req.param('id');
    const query = batchLinesQuerySchema.safeParse(c.req.query());
    if (!query.success) throw invalidInput(query.error, 'query');
    if (!batchIdSchema.safeParse(id).success || !(await deps.batches.peek(id))) throw noBatch(id);
    let afterLine: number | undefined;
    try {
      afterLine = query.data.cursor ? decodeLineCursor(query.data.cursor, id, query.data.status) : undefined;
    } catch (error) {
      if (!(error instanceof InvalidCursorError)) throw error;
      throw invalidFields('query', [{ field: 'cursor', message: error.message }]);
    }
    const page = await deps.batches.lines(id, {
      count: query.data.status,
      limit: query.data.limit,
      afterLine,
    });
    const data = await listGenerationViews(page.items, deps);
    const lastLine = page.items.at(-1)?.id.split('-').at(-1);
    return c.json({
      data,
      ...(page.more && lastLine
        ? { nextCursor: encodeLineCursor(id, query.data.status, Number(lastLine)) }
        : {}),
    });
  });

  app.post('/v1/batches/:id/cancel', async (c) => {
    const id = c.req.param('id');
    const batch = batchIdSchema.safeParse(id).success ? await cancelBatch(id, deps) : undefined;
    if (!batch) throw noBatch(id);
    return c.json(batch, 202);
  });

  app.get('/v1/batches/:id/results', async (c) => {
    const id = c.req.param('id');
    const batch = batchIdSchema.safeParse(id).success ? await deps.batches.peek(id) : undefined;
    if (!batch) throw noBatch(id);
    if (!batch.resultsKey) {
      throw new HttpError(
        409,
        'conflict',
        `Batch ${id} has not ended yet: its results are written when it does`,
      );
    }
    const link = await deps.presign(batch.resultsKey);
    // The presigner sets the lifetime (urlExpirySeconds, capped by its credentials): say what it gave.
    const expiresInSeconds = Math.max(0, Math.floor((Date.parse(link.expiresAt) - deps.clock.now()) / 1000));
    return c.json({ key: batch.resultsKey, url: link.url, expiresAt: link.expiresAt, expiresInSeconds });
  });
}

function lineOptions(
  deps: BatchesDeps,
  options: Pick<ApiOptions, 'webhookPolicy'>,
  priority: 'interactive' | 'batch',
) {
  return { defaultModel: deps.defaultModel, webhookPolicy: options.webhookPolicy, priority };
}

/** The body as numbered values and the batch-wide settings: JSON (`{requests, …}`) or NDJSON (settings in the query). */
async function readBatchBody(c: Context) {
  const contentType = c.req.header('content-type') ?? '';
  const ndjson =
    /^application\/(x-)?ndjson\s*(;|$)/i.test(contentType) ||
    /^application\/jsonl\s*(;|$)/i.test(contentType);
  if (!ndjson && !/^application\/json\s*(;|$)/i.test(contentType)) {
    throw new HttpError(
      415,
      'unsupported_media_type',
      'Send the batch as application/json or application/x-ndjson',
    );
  }
  let text: string;
  try {
    text = STRICT_UTF8.decode(await c.req.arrayBuffer());
  } catch {
    throw new HttpError(400, 'invalid_request', 'The request body is not valid UTF-8', {
      details: [{ field: '(body)', message: 'is not valid UTF-8' }],
    });
  }
  if (ndjson) {
    const settings = batchNdjsonQuerySchema.safeParse(c.req.query());
    if (!settings.success) throw invalidInput(settings.error, 'query');
    const values = ndjsonLines(text);
    if (values.length === 0)
      throw invalidFields('request', [{ field: '(body)', message: 'holds no request' }]);
    return { values, settings: settings.data };
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new HttpError(400, 'invalid_request', 'The request body is not valid JSON', {
      details: [{ field: '(body)', message: 'is not valid JSON' }],
    });
  }
  const parsed = createBatchBodySchema.safeParse(body);
  if (!parsed.success) throw invalidInput(parsed.error, 'request');
  const { requests, ...settings } = parsed.data;
  return { values: requests.map((value, i) => ({ line: i + 1, value, notJson: undefined })), settings };
}

function noBatch(id: string): HttpError {
  return new HttpError(404, 'not_found', `No batch ${JSON.stringify(id.slice(0, 100))}`);
}
