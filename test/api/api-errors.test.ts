import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { useJsonErrors } from '../../functions/api/api-errors.js';
import { HttpError } from '../../functions/api/http-error.js';
import { type Logger, silentLogger } from '../../functions/shared/logger.js';

/** The API's error answers on an app of a few routes, each throwing what a route may throw. */
function setup(logger: Logger = silentLogger) {
  const app = new Hono();
  useJsonErrors(app, logger);
  app.get('/refused', () => {
    throw new HttpError(401, 'unauthorized', 'No token', {
      headers: { 'WWW-Authenticate': 'Bearer realm="x"' },
    });
  });
  app.get('/invalid', () => {
    throw new HttpError(400, 'invalid_request', 'Invalid query: limit: must be a number', {
      details: [{ field: 'limit', message: 'must be a number' }],
    });
  });
  app.get('/broken', () => {
    throw new Error('connect ECONNREFUSED password=hunter2');
  });
  app.post('/only-post', (c) => c.json({ ok: true }));
  return app;
}

describe('the API error answers', () => {
  it('answer an HttpError with its status, headers and the one JSON shape', async () => {
    // Act
    const refused = await setup().request('/refused');
    const invalid = await setup().request('/invalid');

    // Assess
    expect(refused.status).toBe(401);
    expect(refused.headers.get('www-authenticate')).toBe('Bearer realm="x"');
    expect(refused.headers.get('content-type')).toBe('application/json');
    expect(await refused.text()).toBe('{"error":{"type":"unauthorized","message":"No token"}}');
    expect(invalid.status).toBe(400);
    expect(await invalid.json()).toEqual({
      error: {
        type: 'invalid_request',
        message: 'Invalid query: limit: must be a number',
        details: [{ field: 'limit', message: 'must be a number' }],
      },
    });
  });

  it('answer anything else with a 500 without internals, and log it', async () => {
    // Prepare
    const logged: unknown[] = [];
    const logger: Logger = { ...silentLogger, error: (message, extra) => logged.push([message, extra]) };

    // Act
    const response = await setup(logger).request('/broken');

    // Assess
    expect(response.status).toBe(500);
    expect(await response.text()).toBe('{"error":{"type":"internal_error","message":"Internal error"}}');
    expect(logged).toEqual([
      ['Unhandled API error', { path: '/broken', reason: 'Error: connect ECONNREFUSED password=hunter2' }],
    ]);
  });

  it('answer an unknown route with a 404 naming it', async () => {
    const response = await setup().request('/nowhere', { method: 'DELETE' });

    expect(response.status).toBe(404);
    expect(await response.json()).toEqual({
      error: { type: 'not_found', message: 'No route DELETE /nowhere' },
    });
  });

  it('answer a method the path does not serve with a 405 and Allow', async () => {
    const response = await setup().request('/only-post');

    expect(response.status).toBe(405);
    expect(response.headers.get('allow')).toBe('POST');
    expect(await response.json()).toEqual({
      error: { type: 'method_not_allowed', message: 'GET is not allowed here; use POST' },
    });
  });
});
