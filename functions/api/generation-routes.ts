import type { Context, Hono } from 'hono';
import { generationIdSchema } from '../shared/workflow-state.js';
import type { ApiOptions } from './api-options.js';
import { checkCreateRequest } from './create-request.js';
import { InvalidCursorError } from './cursor.js';
import {
  cancelGeneration,
  createGeneration,
  type GenerationsDeps,
  getGeneration,
  IdempotencyConflictError,
  linksFor,
  listGenerations,
} from './generations.js';
import { HttpError, invalidFields, invalidInput } from './http-error.js';
import { jsonBodyLimit, readJsonBody } from './json-body.js';
import {
  GENERATION_SOURCE_HEADER,
  generationSourceHeaderSchema,
  idempotencyKeySchema,
  listQuerySchema,
} from './schemas.js';

/**
 * The four generation routes of docs/api.md: create (202, or 200 with `Idempotent-Replayed` for a
 * replay), list, get and cancel. Every refusal is an {@link HttpError} the app's handler renders.
 */
export function mountGenerationRoutes(
  app: Hono,
  deps: GenerationsDeps,
  options: Pick<ApiOptions, 'callerOf' | 'webhookPolicy'>,
): void {
  app.post('/v1/generations', jsonBodyLimit(), async (c) => {
    const request = checkCreateRequest(await readJsonBody(c), {
      defaultModel: deps.defaultModel,
      webhookPolicy: options.webhookPolicy,
    });
    if (!request.ok) throw invalidFields('request', request.problems);
    const { idempotencyKey, source } = createHeadersOf(c);
    try {
      const created = await createGeneration(
        request.request,
        { idempotencyKey, caller: options.callerOf?.(c), source },
        deps,
      );
      return c.json(
        { id: created.id, status: created.status, createdAt: created.createdAt, links: linksFor(created.id) },
        created.replayed ? 200 : 202,
        created.replayed ? { 'Idempotent-Replayed': 'true' } : {},
      );
    } catch (error) {
      if (error instanceof IdempotencyConflictError) throw new HttpError(409, 'conflict', error.message);
      throw error;
    }
  });

  app.get('/v1/generations', async (c) => {
    const query = listQuerySchema.safeParse(c.req.query());
    if (!query.success) throw invalidInput(query.error, 'query');
    try {
      return c.json(await listGenerations(query.data, deps));
    } catch (error) {
      if (!(error instanceof InvalidCursorError)) throw error;
      throw invalidFields('query', [{ field: 'cursor', message: error.message }]);
    }
  });

  app.get('/v1/generations/:id', async (c) => {
    const id = c.req.param('id');
    const generation = generationIdSchema.safeParse(id).success ? await getGeneration(id, deps) : undefined;
    if (!generation) throw noGeneration(id);
    return c.json(generation);
  });

  app.post('/v1/generations/:id/cancel', async (c) => {
    const id = c.req.param('id');
    const generation = generationIdSchema.safeParse(id).success
      ? await cancelGeneration(id, deps)
      : undefined;
    if (!generation) throw noGeneration(id);
    return c.json(generation, 202);
  });
}

/** The create's optional headers, each checked: `Idempotency-Key`, then `Generation-Source`. */
export function createHeadersOf(c: Context) {
  const keyHeader = c.req.header('idempotency-key');
  const key = keyHeader === undefined ? undefined : idempotencyKeySchema.safeParse(keyHeader);
  if (key && !key.success) throw invalidInput(key.error, 'header', 'Idempotency-Key');
  const sourceHeader = c.req.header(GENERATION_SOURCE_HEADER);
  const source =
    sourceHeader === undefined ? undefined : generationSourceHeaderSchema.safeParse(sourceHeader);
  if (source && !source.success) throw invalidInput(source.error, 'header', GENERATION_SOURCE_HEADER);
  return { idempotencyKey: key?.data, source: source?.data };
}

function noGeneration(id: string): HttpError {
  return new HttpError(404, 'not_found', `No generation ${JSON.stringify(id.slice(0, 100))}`);
}
