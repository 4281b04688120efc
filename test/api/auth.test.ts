import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { useJsonErrors } from '../../functions/api/api-errors.js';
import type { ApiOptions } from '../../functions/api/app.js';
import { BEARER_CHALLENGE, isOpenPath, useCallerChecks } from '../../functions/api/auth.js';
import { silentLogger } from '../../functions/shared/logger.js';

const TOKEN = 'auth-test-token';

/** The caller checks in front of a route of each kind: API, liveness, console, icon. */
function setup(options: Pick<ApiOptions, 'apiToken' | 'verifiedByGateway' | 'console'>) {
  const app = new Hono();
  useJsonErrors(app, silentLogger);
  useCallerChecks(app, options);
  for (const path of ['/v1/generations', '/healthz', '/console/', '/favicon.ico']) {
    app.get(path, (c) => c.text('reached'));
  }
  return app;
}

const statusOf = async (app: Hono, path: string, headers: Record<string, string> = {}) =>
  (await app.request(path, { headers })).status;

describe('the open paths', () => {
  it('are liveness always, and the console and its icon only with the console', () => {
    expect(isOpenPath('/healthz', false)).toBe(true);
    expect(isOpenPath('/console/', false)).toBe(false);
    expect(isOpenPath('/favicon.ico', false)).toBe(false);
    expect(['/console', '/console/', '/console/new', '/favicon.ico'].map((p) => isOpenPath(p, true))).toEqual(
      [true, true, true, true],
    );
    expect(['/consoles', '/v1/generations', '/openapi.json'].map((p) => isOpenPath(p, true))).toEqual([
      false,
      false,
      false,
    ]);
  });
});

describe('the bearer token check', () => {
  it('refuses a missing or wrong token with a 401 carrying the Bearer challenge', async () => {
    // Prepare
    const app = setup({ apiToken: TOKEN });

    // Act
    const missing = await app.request('/v1/generations');
    const wrong = await app.request('/v1/generations', { headers: { authorization: `Bearer ${TOKEN}x` } });

    // Assess
    for (const response of [missing, wrong]) {
      expect(response.status).toBe(401);
      expect(response.headers.get('www-authenticate')).toBe(BEARER_CHALLENGE);
      expect(await response.json()).toEqual({
        error: {
          type: 'unauthorized',
          message: 'Missing or wrong bearer token (Authorization: Bearer <API_TOKEN>)',
        },
      });
    }
  });

  it('lets the right token through, and the open paths without one', async () => {
    const app = setup({ apiToken: TOKEN, console: true });

    expect(await statusOf(app, '/v1/generations', { authorization: `Bearer ${TOKEN}` })).toBe(200);
    expect(await statusOf(app, '/healthz')).toBe(200);
    expect(await statusOf(app, '/console/')).toBe(200);
    expect(await statusOf(app, '/favicon.ico')).toBe(200);
  });

  it('refuses before an unknown route would be a 404', async () => {
    expect(await statusOf(setup({ apiToken: TOKEN }), '/v2/nowhere')).toBe(401);
  });
});

describe('the API Gateway check', () => {
  it('refuses a caller the gateway did not verify, but for the open paths', async () => {
    // Prepare
    const app = setup({ verifiedByGateway: (c) => c.req.header('x-verified') === 'yes', console: true });

    // Act
    const refused = await app.request('/v1/generations');

    // Assess
    expect(refused.status).toBe(401);
    expect(refused.headers.get('www-authenticate')).toBe(BEARER_CHALLENGE);
    expect(((await refused.json()) as { error: { message: string } }).error.message).toBe(
      'This route needs a caller verified by API Gateway',
    );
    expect(await statusOf(app, '/v1/generations', { 'x-verified': 'yes' })).toBe(200);
    expect(await statusOf(app, '/console/')).toBe(200);
  });

  it('keeps the console and its icon closed when the app has no console', async () => {
    const app = setup({ verifiedByGateway: () => false });

    expect(await statusOf(app, '/console/')).toBe(401);
    expect(await statusOf(app, '/favicon.ico')).toBe(401);
    expect(await statusOf(app, '/healthz')).toBe(200);
  });
});
