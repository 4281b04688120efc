import { describe, expect, it } from 'vitest';
import { type ApiOptions, createApiApp } from '../../functions/api/app.js';
import { createOidcRelyingParty } from '../../functions/api/console/oidc.js';
import { TRANSACTION_COOKIE } from '../../functions/api/console/oidc-routes.js';
import { seal } from '../../functions/api/console/oidc-session.js';
import { SESSION_COOKIE } from '../../functions/api/console/session.js';
import type { Clock } from '../../functions/shared/clock.js';
import { silentLogger } from '../../functions/shared/logger.js';
import { FakeExecutionService } from '../api/fake-executions.js';
import { fakePresign } from '../api/fixtures.js';
import { MemoryGenerationIndex } from '../fakes/memory-index.js';
import { CLIENT_ID, fakeIssuer, goodClaims, ISSUER } from './fake-issuer.js';

const KEY = 'a-session-key-of-at-least-32-characters!';
const NOW = Date.now();
const clock: Clock = { now: () => NOW };
const ORIGIN = 'https://console.example';

function setup(options: ApiOptions = {}) {
  const index = new MemoryGenerationIndex();
  const issuer = fakeIssuer(() => goodClaims('unused'));
  const app = createApiApp(
    {
      executions: new FakeExecutionService(clock, index),
      index,
      presign: fakePresign,
      clock,
      logger: silentLogger,
    },
    {
      console: true,
      oidc: {
        relyingParty: createOidcRelyingParty({ issuer: ISSUER, clientId: CLIENT_ID, fetch: issuer.fetch }),
        sessionKey: async () => KEY,
      },
      ...options,
    },
  );
  const get = (path: string, headers: Record<string, string> = {}) =>
    app.request(`${ORIGIN}${path}`, { headers });
  return { app, issuer, index, get };
}

const sessionCookie = (exp = Math.floor(NOW / 1000) + 60) =>
  `${SESSION_COOKIE}=${seal(KEY, 'session', { sub: 'alice', exp })}`;

describe('the console with OIDC sign-in', () => {
  it('sends a browser without a session to sign in, with the page to come back to', async () => {
    // Prepare
    const { get } = setup();

    // Act
    const answer = await get('/console/new?from=x');

    // Assess
    expect(answer.status).toBe(303);
    expect(answer.headers.get('location')).toBe(
      `/console/sign-in?next=${encodeURIComponent('/console/new?from=x')}`,
    );
  });

  it('serves the gallery to a browser with a live session', async () => {
    // Prepare
    const { get } = setup();

    // Act
    const answer = await get('/console/', { cookie: sessionCookie() });

    // Assess
    expect(answer.status).toBe(200);
    expect(await answer.text()).toContain('Sign out');
  });

  it('sends a browser with an expired session to sign in', async () => {
    // Prepare
    const { get } = setup();

    // Act
    const answer = await get('/console/', { cookie: sessionCookie(Math.floor(NOW / 1000) - 1) });

    // Assess
    expect(answer.status).toBe(303);
  });

  it('starts a sign-in at the issuer with a transaction cookie only the callback receives', async () => {
    // Prepare
    const { get } = setup();

    // Act
    const answer = await get('/console/sign-in?next=/console/new');

    // Assess
    expect(answer.status).toBe(303);
    expect(answer.headers.get('location')).toMatch(new RegExp(`^${ISSUER}/authorize\\?`));
    expect(new URL(answer.headers.get('location') ?? '').searchParams.get('redirect_uri')).toBe(
      `${ORIGIN}/console/auth/callback`,
    );
    const cookie = answer.headers.get('set-cookie') ?? '';
    expect(cookie).toMatch(new RegExp(`^${TRANSACTION_COOKIE}=`));
    expect(cookie).toContain('Path=/console/auth/callback');
    expect(cookie).toContain('HttpOnly');
    expect(cookie).toContain('Secure');
    expect(cookie).toContain('SameSite=Lax');
    expect(cookie).toContain('Max-Age=600');
  });

  it('refuses a callback without its transaction cookie, before spending the code', async () => {
    // Prepare
    const { get, issuer } = setup();

    // Act
    const answer = await get(`/console/auth/callback?code=c&state=s&iss=${encodeURIComponent(ISSUER)}`);

    // Assess
    expect(answer.status).toBe(400);
    expect(issuer.tokenRequests).toHaveLength(0);
  });

  it('signs out by expiring the session cookie', async () => {
    // Prepare
    const { app } = setup();

    // Act
    const answer = await app.request(`${ORIGIN}/console/sign-out`, {
      method: 'POST',
      headers: { origin: ORIGIN, cookie: sessionCookie() },
    });

    // Assess
    expect(answer.status).toBe(303);
    expect(answer.headers.get('location')).toBe('/console/signed-out');
    expect(answer.headers.get('set-cookie')).toMatch(new RegExp(`^${SESSION_COOKIE}=;.*Max-Age=0`));
  });

  it('records the signed-in subject as the caller of a generation the form creates', async () => {
    // Prepare
    const { app, index } = setup();

    // Act
    const answer = await app.request(`${ORIGIN}/console/generations`, {
      method: 'POST',
      headers: {
        origin: ORIGIN,
        cookie: sessionCookie(),
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ prompt: 'a lighthouse', idempotency_key: 'console-k1' }).toString(),
    });
    const id = (answer.headers.get('location') ?? '').split('/').pop() ?? '';

    // Assess
    expect(answer.status).toBe(303);
    expect((await index.get(id))?.caller).toBe('alice');
  });
});

describe('routes API Gateway did not verify (the console open at the gateway)', () => {
  const verified = (c: { env: unknown }) => (c.env as { verified?: boolean } | undefined)?.verified === true;

  it('refuses an API route the gateway did not verify', async () => {
    // Prepare
    const { app } = setup({ verifiedByGateway: verified });

    // Act
    const answer = await app.request(`${ORIGIN}/v1/generations`, {}, { verified: false });

    // Assess
    expect(answer.status).toBe(401);
  });

  it('refuses a console-looking path that normalizes to an API route', async () => {
    // Prepare
    const { app } = setup({ verifiedByGateway: verified });

    // Act
    const answer = await app.request(`${ORIGIN}/console/%2e%2e/v1/generations`, {}, { verified: false });

    // Assess
    expect(answer.status).toBe(401);
  });

  it('serves an API route the gateway verified', async () => {
    // Prepare
    const { app } = setup({ verifiedByGateway: verified });

    // Act
    const answer = await app.request(`${ORIGIN}/v1/generations`, {}, { verified: true });

    // Assess
    expect(answer.status).toBe(200);
  });
});
