import type { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { type ApiOptions, createApiApp } from '../../functions/api/app.js';
import { CROSS_SITE_FORM } from '../../functions/api/console/security.js';
import type { Clock } from '../../functions/shared/clock.js';
import { type Logger, silentLogger } from '../../functions/shared/logger.js';
import { FakeExecutionService } from '../api/fake-executions.js';
import { fakePresign } from '../api/fixtures.js';
import { MemoryGenerationIndex } from '../fakes/memory-index.js';

/** The console's errors: every one an HTML page with its status, never the API's JSON. */
const clock: Clock = { now: () => Date.parse('2026-03-01T12:34:56.789Z') };
const ORIGIN = 'http://localhost';
const formHeaders = { origin: ORIGIN, 'content-type': 'application/x-www-form-urlencoded' };
const TOKEN = 'error-pages-test-token';

function setup(options: ApiOptions & { logger?: Logger } = {}) {
  const index = new MemoryGenerationIndex();
  const executions = new FakeExecutionService(clock, index);
  const app: Hono = createApiApp(
    { executions, index, presign: fakePresign, clock, logger: options.logger ?? silentLogger },
    { console: true, ...options },
  );
  return { app, index, executions };
}

/** The page's heading and first paragraph, and whether it offers to sign out. */
async function pageOf(response: Response) {
  const text = await response.text();
  return {
    type: response.headers.get('content-type'),
    heading: /<h1>([^<]*)<\/h1>/.exec(text)?.[1],
    message: /<\/h1><p>([^<]*)<\/p>/.exec(text)?.[1],
    signOut: text.includes('action="/console/sign-out"'),
    text,
  };
}

describe('the console error pages', () => {
  it('refuse a form from another site with a 403 page that says why', async () => {
    // Prepare
    const { app, executions } = setup();

    // Act
    const response = await app.request('/console/generations', {
      method: 'POST',
      headers: { ...formHeaders, origin: 'https://evil.example' },
      body: 'prompt=A+red+fox',
    });

    // Assess
    expect(response.status).toBe(403);
    expect(response.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(await pageOf(response)).toMatchObject({
      type: 'text/html; charset=UTF-8',
      heading: 'Refused',
      message: CROSS_SITE_FORM,
    });
    expect(executions.calls.start).toEqual([]);
  });

  it('refuse a form over 64 KB with a 413 page, starting nothing', async () => {
    // Prepare
    const { app, executions } = setup();

    // Act
    const response = await app.request('/console/generations', {
      method: 'POST',
      headers: formHeaders,
      body: `prompt=${'x'.repeat(70_000)}`,
    });

    // Assess
    expect(response.status).toBe(413);
    expect(await pageOf(response)).toMatchObject({
      heading: 'Too large',
      message: 'This form is over 64 KB.',
    });
    expect(executions.calls.start).toEqual([]);
  });

  it.each([
    ['GET', '/console/generations/gen-nope'],
    ['GET', '/console/generations/gen-nope/live'],
    ['GET', '/console/generations/gen-nope/card'],
    ['GET', '/console/generations/gen.1'],
    ['POST', '/console/generations/gen-nope/cancel'],
  ])('answer %s %s with a 404 page', async (method, path) => {
    const response = await setup().app.request(path, { method, headers: formHeaders });

    expect(response.status).toBe(404);
    expect(await pageOf(response)).toMatchObject({
      heading: 'Not found',
      message: 'There is no such generation.',
    });
  });

  it('answer a console path no route serves with a 404 page, with the engine line, not JSON', async () => {
    // Prepare
    const { app } = setup({ engineHealth: async () => ({}) });

    // Act
    const page = await pageOf(await app.request('/console/no-such-page'));

    // Assess
    expect(page).toMatchObject({
      type: 'text/html; charset=UTF-8',
      heading: 'Not found',
      message: 'There is no such page in this console.',
    });
    expect(page.text).toContain('Local engine: not answering');
  });

  it('answer a bad gallery address with a 400 page', async () => {
    const response = await setup().app.request('/console/?status=lost');

    expect(response.status).toBe(400);
    expect(await pageOf(response)).toMatchObject({
      heading: 'Not a valid address',
      message: 'Only ?status= (one of the statuses) and a cursor from this page are understood.',
    });
  });

  it('answer a failure with a 500 page without internals, and log it', async () => {
    // Prepare
    const logged: unknown[] = [];
    const logger: Logger = { ...silentLogger, error: (message, extra) => logged.push([message, extra]) };
    const { app, index } = setup({ logger });
    index.failure = new Error('connect ECONNREFUSED password=hunter2');

    // Act
    const response = await app.request('/console/');

    // Assess
    const page = await pageOf(response);
    expect(response.status).toBe(500);
    expect(page).toMatchObject({
      heading: 'Something went wrong',
      message: 'The console could not answer; see the server log.',
    });
    expect(page.text).not.toContain('hunter2');
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject(['Unhandled console error', { path: '/console/' }]);
  });

  it('offer to sign out on a signed-in page, not on the 401 page of a browser without a session', async () => {
    // Prepare
    const { app } = setup({ apiToken: TOKEN });
    const signedIn = await app.request('/console/sign-in', {
      method: 'POST',
      headers: formHeaders,
      body: `token=${TOKEN}`,
    });
    const cookie = (signedIn.headers.get('set-cookie') ?? '').split(';')[0] ?? '';

    // Act
    const refused = await app.request('/console/generations', {
      method: 'POST',
      headers: formHeaders,
      body: 'prompt=a',
    });
    const missing = await app.request('/console/generations/gen-nope', { headers: { cookie } });

    // Assess
    expect(refused.status).toBe(401);
    expect(await pageOf(refused)).toMatchObject({
      heading: 'Sign in first',
      message: 'This server needs its API token.',
      signOut: false,
    });
    expect(missing.status).toBe(404);
    expect(await pageOf(missing)).toMatchObject({ heading: 'Not found', signOut: true });
  });

  it('leave the API answering JSON beside the console', async () => {
    const response = await setup().app.request('/v2/nowhere');

    expect(response.status).toBe(404);
    expect(await response.json()).toEqual({
      error: { type: 'not_found', message: 'No route GET /v2/nowhere' },
    });
  });
});
