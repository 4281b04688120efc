import { Hono } from 'hono';
import { useJsonErrors } from './api-errors.js';
import type { ApiOptions } from './api-options.js';
import { useCallerChecks } from './auth.js';
import { mountBatchRoutes } from './batch-routes.js';
import { CONSOLE_BASE, createConsoleApp } from './console/app.js';
import { FAVICON_CACHE_CONTROL, FAVICON_ICO } from './console/favicon.js';
import { mountGenerationRoutes } from './generation-routes.js';
import type { GenerationsDeps } from './generations.js';
import { MAX_BODY_BYTES } from './schemas.js';
import { mountServiceRoutes } from './service-routes.js';

export { BEARER_CHALLENGE } from './auth.js';
export type { ApiOptions };
export { MAX_BODY_BYTES };

/**
 * The HTTP API as a Hono app over its dependencies: the same app runs on Lambda (`handle(app)`)
 * and in the local server (`@hono/node-server`). Its parts, in the order a request meets them:
 * the JSON error answers (api-errors.ts), the caller checks (auth.ts), the service routes, the
 * console when asked for, and the generation routes.
 */
export function createApiApp(deps: GenerationsDeps, options: ApiOptions = {}): Hono {
  const app = new Hono();
  useJsonErrors(app, deps.logger);
  useCallerChecks(app, options);
  mountServiceRoutes(app, options);
  if (options.console) mountConsole(app, deps, options);
  mountGenerationRoutes(app, deps, options);
  const { batches, objects, bucket } = deps;
  if (batches && objects && bucket) mountBatchRoutes(app, { ...deps, batches, objects, bucket }, options);
  return app;
}

/** The console at `/console/`, the server's root sent there, and the icon a browser asks for. */
function mountConsole(app: Hono, deps: GenerationsDeps, options: ApiOptions): void {
  app.route('/', createConsoleApp(deps, options));
  app.get('/', (c) => c.redirect(`${CONSOLE_BASE}/`));
  // Where a browser looks for an icon when a page names none (the console's pages name the SVG).
  app.get('/favicon.ico', (c) =>
    c.body(new Uint8Array(FAVICON_ICO), 200, {
      'Content-Type': 'image/x-icon',
      'Cache-Control': FAVICON_CACHE_CONTROL,
    }),
  );
}
