import { timingSafeEqual } from 'node:crypto';
import { type Context, Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { methodNotAllowed } from 'hono/method-not-allowed';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { z } from 'zod';
import { describeError } from '../shared/errors.js';
import type { WebhookPolicy } from '../shared/webhook-url.js';
import { generationIdSchema } from '../shared/workflow-state.js';
import { detailsOf } from '../shared/zod-details.js';
import { CONSOLE_BASE, createConsoleApp, isConsolePath } from './console/app.js';
import type { OidcConsoleSignIn } from './console/oidc-routes.js';
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
import { openApiDocument } from './openapi.js';
import { type ErrorBody, idempotencyKeySchema, listQuerySchema, MAX_BODY_BYTES } from './schemas.js';

export { MAX_BODY_BYTES };

/** Decodes UTF-8 and throws on any byte sequence that is not, instead of writing U+FFFD. */
const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true });

export interface ApiOptions {
  /**
   * When set, every request but `/healthz` needs `Authorization: Bearer <token>` (the local server;
   * on AWS, API Gateway authenticates with IAM before the Lambda runs).
   */
  readonly apiToken?: string;
  /**
   * Who made a request, recorded with each generation it creates: on Lambda, the IAM principal
   * or the JWT subject API Gateway verified. @default unknown
   */
  readonly callerOf?: (c: Context) => string | undefined;
  /**
   * Who may receive webhooks: a `webhook_url` the notifier would refuse is a 400 at creation.
   * @default the deployed policy: https to public addresses only
   */
  readonly webhookPolicy?: WebhookPolicy;
  /**
   * Serve the web console at `/console/` (and send `/` there), with the same token, webhook policy
   * and caller. On Lambda only in `jwt` mode, with `oidc` (docs/console.md). @default false
   */
  readonly console?: boolean;
  /** The console's sign-in through an OpenID Provider (see `ConsoleOptions.oidc`). @default none */
  readonly oidc?: OidcConsoleSignIn;
  /**
   * Whether API Gateway verified this request's caller. When given, a request it did not verify
   * reaches only `/healthz` and the console (which signs browsers in itself): the console's
   * gateway routes have no authorizer, and a path such as `/console/..%2fv1/generations` that
   * the gateway matched as a console route but the URL parser normalizes to an API route must
   * not get through unauthenticated. @default every request is trusted (the local server)
   */
  readonly verifiedByGateway?: (c: Context) => boolean;
  /**
   * The local engine's state (who runs the executions, how many wait, are granted and run, and
   * any that stopped making progress), served at `GET /v1/health` behind the same auth as the
   * API. @default none: the route does not exist (on AWS, Step Functions and the alarms say it)
   */
  readonly engineHealth?: () => Promise<Record<string, unknown>>;
}

/** The challenge a 401 carries (RFC 9110 §11.6.1 requires one). */
export const BEARER_CHALLENGE = 'Bearer realm="sd35"';

/** An error answer with the one error shape. Thrown inside handlers, rendered by `onError`. */
export class ApiError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly type: string,
    message: string,
    readonly details?: ErrorBody['error']['details'],
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

function invalid(error: z.ZodError, what: string, prefix = ''): ApiError {
  const details = detailsOf(error, prefix);
  return invalidFields(what, details);
}

function invalidFields(what: string, details: Array<{ field: string; message: string }>): ApiError {
  return new ApiError(
    400,
    'invalid_request',
    `Invalid ${what}: ${details.map((d) => `${d.field}: ${d.message}`).join('; ')}`,
    details,
  );
}

/**
 * The HTTP API as a Hono app over its dependencies: the same app runs on Lambda (`handle(app)`)
 * and in the local server (`@hono/node-server`).
 */
export function createApiApp(deps: GenerationsDeps, options: ApiOptions = {}): Hono {
  const app = new Hono();

  app.use(
    methodNotAllowed({
      app,
      onMethodNotAllowed: (c, methods) =>
        c.json<ErrorBody>(
          {
            error: {
              type: 'method_not_allowed',
              message: `${c.req.method} is not allowed here; use ${methods.join(', ')}`,
            },
          },
          405,
          { Allow: methods.join(', ') },
        ),
    }),
  );

  const { verifiedByGateway } = options;
  if (verifiedByGateway) {
    app.use('*', async (c, next) => {
      const open = c.req.path === '/healthz' || (options.console && isConsolePath(c.req.path));
      if (open || verifiedByGateway(c)) return next();
      throw new ApiError(
        401,
        'unauthorized',
        'This route needs a caller verified by API Gateway',
        undefined,
        {
          'WWW-Authenticate': BEARER_CHALLENGE,
        },
      );
    });
  }

  if (options.apiToken) {
    const expected = Buffer.from(`Bearer ${options.apiToken}`);
    app.use('*', async (c, next) => {
      // The console signs browsers in with the same token and keeps a session cookie of its own.
      if (c.req.path === '/healthz' || (options.console && isConsolePath(c.req.path))) return next();
      const given = Buffer.from(c.req.header('authorization') ?? '');
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
        throw new ApiError(
          401,
          'unauthorized',
          'Missing or wrong bearer token (Authorization: Bearer <API_TOKEN>)',
          undefined,
          { 'WWW-Authenticate': BEARER_CHALLENGE },
        );
      }
      return next();
    });
  }

  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  const { engineHealth } = options;
  if (engineHealth)
    app.get('/v1/health', async (c) => c.json({ status: 'ok', engine: await engineHealth() }));
  if (options.console) {
    app.route('/', createConsoleApp(deps, options));
    app.get('/', (c) => c.redirect(`${CONSOLE_BASE}/`));
  }
  app.get('/openapi.json', (c) => c.json(openApiDocument()));

  app.post(
    '/v1/generations',
    bodyLimit({
      maxSize: MAX_BODY_BYTES,
      onError: () => {
        throw new ApiError(413, 'payload_too_large', `The request body is over ${MAX_BODY_BYTES} bytes`);
      },
    }),
    async (c) => {
      const contentType = c.req.header('content-type') ?? '';
      if (!/^application\/json\s*(;|$)/i.test(contentType)) {
        throw new ApiError(415, 'unsupported_media_type', 'Send the request body as application/json');
      }
      let text: string;
      try {
        // JSON is UTF-8 (RFC 8259): a lenient decode would turn other bytes into U+FFFD unseen.
        text = STRICT_UTF8.decode(await c.req.arrayBuffer());
      } catch {
        throw new ApiError(400, 'invalid_request', 'The request body is not valid UTF-8', [
          { field: '(body)', message: 'is not valid UTF-8' },
        ]);
      }
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        throw new ApiError(400, 'invalid_request', 'The request body is not valid JSON', [
          { field: '(body)', message: 'is not valid JSON' },
        ]);
      }
      const request = checkCreateRequest(body, {
        defaultModel: deps.defaultModel,
        webhookPolicy: options.webhookPolicy,
      });
      if (!request.ok) throw invalidFields('request', request.problems);
      const keyHeader = c.req.header('idempotency-key');
      const key = keyHeader === undefined ? undefined : idempotencyKeySchema.safeParse(keyHeader);
      if (key && !key.success) throw invalid(key.error, 'header', 'Idempotency-Key');

      try {
        const created = await createGeneration(
          request.request,
          { idempotencyKey: key?.data, caller: options.callerOf?.(c) },
          deps,
        );
        return c.json(
          {
            id: created.id,
            status: created.status,
            createdAt: created.createdAt,
            links: linksFor(created.id),
          },
          created.replayed ? 200 : 202,
          created.replayed ? { 'Idempotent-Replayed': 'true' } : {},
        );
      } catch (error) {
        if (error instanceof IdempotencyConflictError) throw new ApiError(409, 'conflict', error.message);
        throw error;
      }
    },
  );

  app.get('/v1/generations', async (c) => {
    const query = listQuerySchema.safeParse(c.req.query());
    if (!query.success) throw invalid(query.error, 'query');
    try {
      return c.json(await listGenerations(query.data, deps));
    } catch (error) {
      if (!(error instanceof InvalidCursorError)) throw error;
      throw new ApiError(400, 'invalid_request', `Invalid query: cursor: ${error.message}`, [
        { field: 'cursor', message: error.message },
      ]);
    }
  });

  app.get('/v1/generations/:id', async (c) => {
    const id = c.req.param('id');
    const generation = generationIdSchema.safeParse(id).success ? await getGeneration(id, deps) : undefined;
    if (!generation) throw notFound(id);
    return c.json(generation);
  });

  app.post('/v1/generations/:id/cancel', async (c) => {
    const id = c.req.param('id');
    const generation = generationIdSchema.safeParse(id).success
      ? await cancelGeneration(id, deps)
      : undefined;
    if (!generation) throw notFound(id);
    return c.json(generation, 202);
  });

  app.notFound((c) =>
    c.json<ErrorBody>(
      { error: { type: 'not_found', message: `No route ${c.req.method} ${c.req.path}` } },
      404,
    ),
  );

  app.onError((error, c) => {
    if (error instanceof ApiError) {
      return c.json<ErrorBody>(
        {
          error: {
            type: error.type,
            message: error.message,
            ...(error.details ? { details: error.details } : {}),
          },
        },
        error.status,
        error.headers,
      );
    }
    // Anything else is ours: log it, answer without internals.
    deps.logger.error('Unhandled API error', { path: c.req.path, reason: describeError(error) });
    return c.json<ErrorBody>({ error: { type: 'internal_error', message: 'Internal error' } }, 500);
  });

  return app;
}

function notFound(id: string): ApiError {
  return new ApiError(404, 'not_found', `No generation ${JSON.stringify(id.slice(0, 100))}`);
}
