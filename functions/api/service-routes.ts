import type { Hono } from 'hono';
import type { ApiOptions } from './api-options.js';
import { openApiDocument } from './openapi.js';

/**
 * The routes about the service rather than its generations: liveness (`/healthz`, open to all),
 * the local engine's state (`/v1/health`, only with `engineHealth`) and the OpenAPI document.
 */
export function mountServiceRoutes(app: Hono, options: Pick<ApiOptions, 'engineHealth'>): void {
  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  const { engineHealth } = options;
  if (engineHealth)
    app.get('/v1/health', async (c) => c.json({ status: 'ok', engine: await engineHealth() }));
  app.get('/openapi.json', (c) => c.json(openApiDocument()));
}
