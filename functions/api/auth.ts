import { timingSafeEqual } from 'node:crypto';
import type { Hono } from 'hono';
import type { ApiOptions } from './api-options.js';
import { isConsolePath } from './console/app.js';
import { HttpError } from './http-error.js';

/** The challenge a 401 carries (RFC 9110 §11.6.1 requires one). */
export const BEARER_CHALLENGE = 'Bearer realm="sd35"';

/** Paths anyone may read: liveness, and with the console its pages (which sign in) and icon. */
export const isOpenPath = (path: string, withConsole: boolean): boolean =>
  path === '/healthz' || (withConsole && (isConsolePath(path) || path === '/favicon.ico'));

const unauthorized = (message: string) =>
  new HttpError(401, 'unauthorized', message, { headers: { 'WWW-Authenticate': BEARER_CHALLENGE } });

/**
 * Who may call, checked before any route (so a 401 comes before a 404 or 405): with
 * `verifiedByGateway`, only callers API Gateway verified; with `apiToken`, only requests carrying
 * it as a bearer token. The open paths ({@link isOpenPath}) pass both. Register before the routes.
 */
export function useCallerChecks(
  app: Hono,
  options: Pick<ApiOptions, 'apiToken' | 'verifiedByGateway' | 'console'>,
): void {
  const open = (path: string) => isOpenPath(path, options.console === true);
  const { verifiedByGateway, apiToken } = options;
  if (verifiedByGateway) {
    app.use('*', async (c, next) => {
      if (open(c.req.path) || verifiedByGateway(c)) return next();
      throw unauthorized('This route needs a caller verified by API Gateway');
    });
  }
  if (apiToken) {
    const expected = Buffer.from(`Bearer ${apiToken}`);
    app.use('*', async (c, next) => {
      // The console signs browsers in with the same token and keeps a session cookie of its own.
      if (open(c.req.path)) return next();
      const given = Buffer.from(c.req.header('authorization') ?? '');
      if (given.length === expected.length && timingSafeEqual(given, expected)) return next();
      throw unauthorized('Missing or wrong bearer token (Authorization: Bearer <API_TOKEN>)');
    });
  }
}
