import type { Context, Hono } from 'hono';
import { methodNotAllowed } from 'hono/method-not-allowed';
import { describeError } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import { HttpError } from './http-error.js';

/** An {@link HttpError} as the API answers it: its status and headers, the one JSON error shape. */
export const jsonError = (c: Context, error: HttpError): Response =>
  c.json(error.toBody(), error.status, { ...error.headers });

/**
 * The API's error answers, all in the one JSON shape: a method the path does not serve (405 with
 * `Allow`), an unknown route (404), every {@link HttpError} a handler or middleware throws, and
 * anything else as a 500 that is logged and answered without internals. Register it before any
 * route or middleware: the 405 check wraps every later one.
 */
export function useJsonErrors(app: Hono, logger: Logger): void {
  app.use(
    methodNotAllowed({
      app,
      onMethodNotAllowed: (c, methods) => {
        throw new HttpError(
          405,
          'method_not_allowed',
          `${c.req.method} is not allowed here; use ${methods.join(', ')}`,
          { headers: { Allow: methods.join(', ') } },
        );
      },
    }),
  );
  app.notFound((c) =>
    jsonError(c, new HttpError(404, 'not_found', `No route ${c.req.method} ${c.req.path}`)),
  );
  app.onError((error, c) => {
    if (error instanceof HttpError) return jsonError(c, error);
    // Anything else is ours: log it, answer without internals.
    logger.error('Unhandled API error', { path: c.req.path, reason: describeError(error) });
    return jsonError(c, new HttpError(500, 'internal_error', 'Internal error'));
  });
}
