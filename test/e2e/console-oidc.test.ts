import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOidcRelyingParty } from '../../functions/api/console/oidc.js';
import { seal } from '../../functions/api/console/oidc-session.js';
import { SESSION_COOKIE } from '../../functions/api/console/session.js';
import { AdjustableClock } from '../../functions/shared/clock.js';
import { launchBrowser } from '../../local/browser.js';
import { startTestApi, type TestApi } from '../support/local-api.js';
import { CONSOLE_CLIENT_ID, startTestIssuer, type TestIssuer } from '../support/oidc-issuer.js';

/**
 * The console's OIDC sign-in (`jwt` mode) in a real Chromium against a real OpenID Provider
 * (oidc-provider, in this process on a loopback port): the browser is sent to the issuer, logs in
 * there, and comes back signed in; forged, expired and foreign sign-ins are refused.
 */
const SESSION_KEY = 'a-session-key-of-this-test-at-least-32-characters';
const clock = new AdjustableClock();
let issuer: TestIssuer;
let testApi: TestApi;
let consoleUrl: string;
let browser: Browser;

beforeAll(async () => {
  issuer = await startTestIssuer();
  testApi = await startTestApi('console-oidc-', {
    virtualWaits: clock,
    consoleOidc: {
      relyingParty: createOidcRelyingParty({ issuer: issuer.url, clientId: CONSOLE_CLIENT_ID }),
      sessionKey: async () => SESSION_KEY,
    },
  });
  consoleUrl = `${testApi.api.url}/console/`;
  issuer.register(`${testApi.api.url}/console/auth/callback`);
  browser = await launchBrowser();
  // Synthesizing the stack, starting s3rver and unpacking Chromium take minutes on a busy machine.
}, 600_000);

afterAll(async () => {
  await browser?.close();
  await testApi?.close();
  await issuer?.close();
});

async function newPage(): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext();
  const page = await context.newPage();
  // Playwright waits for ever by default: a missing element should fail the test, late.
  page.setDefaultTimeout(180_000);
  return { context, page };
}

/** The issuer's development login (any name and password) and its consent form. */
async function logInAtIssuer(page: Page, login = 'alice'): Promise<void> {
  await page.waitForURL((url) => url.href.startsWith(issuer.url));
  await page.locator('input[name="login"]').fill(login);
  await page.locator('input[name="password"]').fill('any password');
  await page.locator('button[type="submit"]').click();
  // Consent, the first time this account meets the client.
  await page.waitForURL((url) => url.href.startsWith(consoleUrl) || /\/interaction\//.test(url.pathname));
  if (!page.url().startsWith(consoleUrl)) await page.locator('button[type="submit"]').click();
}

async function signIn(page: Page, login?: string): Promise<void> {
  await page.goto(consoleUrl);
  await logInAtIssuer(page, login);
  await page.waitForURL(consoleUrl);
}

/**
 * A sign-in started outside the browser (so the test holds its transaction cookie), its
 * authorization request sent as `clientId`, the login done in the browser. The browser's own
 * callback has no transaction cookie and is refused before the code is spent; the test gets the
 * callback URL to present itself.
 */
async function authorizeAtIssuer(clientId: string): Promise<{ transaction: string; callbackUrl: string }> {
  const start = await fetch(`${consoleUrl}sign-in`, { redirect: 'manual' });
  const transaction = (start.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
  const authorize = new URL(start.headers.get('location') ?? '');
  authorize.searchParams.set('client_id', clientId);
  const { context, page } = await newPage();
  let callbackUrl = '';
  page.on('request', (request) => {
    if (new URL(request.url()).pathname === '/console/auth/callback') callbackUrl = request.url();
  });
  await page.goto(authorize.href);
  await logInAtIssuer(page, `user-of-${clientId}`);
  await expect.poll(() => callbackUrl, { timeout: 180_000 }).not.toBe('');
  await context.close();
  return { transaction, callbackUrl };
}

describe('the console signed in through an OpenID Provider', () => {
  it('sends the browser to the issuer and back to the gallery, signed in', async () => {
    // Prepare
    const { context, page } = await newPage();

    // Act
    await page.goto(consoleUrl);
    const atIssuer = page.waitForURL((url) => url.href.startsWith(issuer.url));
    await atIssuer;
    await logInAtIssuer(page);
    await page.waitForURL(consoleUrl);

    // Assess
    await page.getByRole('heading', { name: 'Gallery' }).waitFor();
    await page.getByRole('button', { name: 'Sign out' }).waitFor();
    const session = (await context.cookies()).find((cookie) => cookie.name === SESSION_COOKIE);
    expect(session).toMatchObject({ httpOnly: true, sameSite: 'Lax', path: '/console' });
    await context.close();
  });

  it('sends a browser with a forged session cookie to the issuer', async () => {
    // Prepare: a well-formed session signed with another key.
    const { context, page } = await newPage();
    const forged = seal('another-key-that-is-also-32-characters-long', 'session', {
      sub: 'mallory',
      exp: Math.floor(clock.now() / 1000) + 3600,
    });
    await context.addCookies([{ name: SESSION_COOKIE, value: forged, url: consoleUrl }]);

    // Act
    await page.goto(consoleUrl);

    // Assess
    await page.waitForURL((url) => url.href.startsWith(issuer.url));
    await context.close();
  });

  it('keeps a form sent after the session expired, and refuses it', async () => {
    // Prepare
    const { context, page } = await newPage();
    await signIn(page);
    await page.goto(`${consoleUrl}new`);
    await page.getByLabel('Prompt', { exact: true }).fill('A lighthouse at dusk');

    // Act: nine hours later (sessions last eight), the form is sent.
    clock.advance(9 * 3600 * 1000);
    const answer = page.waitForResponse((response) => response.request().method() === 'POST');
    await page.getByRole('button', { name: 'Generate' }).click();

    // Assess
    expect((await answer).status()).toBe(401);
    expect(await page.getByLabel('Prompt', { exact: true }).inputValue()).toBe('A lighthouse at dusk');
    await page.getByText('Your sign-in has expired').waitFor();
    await context.close();
  });

  it('signs in once with a callback, and refuses the same callback replayed with its cookie', async () => {
    // Prepare
    const { transaction, callbackUrl } = await authorizeAtIssuer(CONSOLE_CLIENT_ID);
    const callback = () => fetch(callbackUrl, { headers: { cookie: transaction }, redirect: 'manual' });

    // Act
    const first = await callback();
    const replayed = await callback();

    // Assess
    expect(first.status).toBe(303);
    expect(first.headers.get('set-cookie')).toContain(`${SESSION_COOKIE}=`);
    expect(replayed.status).toBe(400);
    expect(replayed.headers.get('set-cookie') ?? '').not.toContain(`${SESSION_COOKIE}=`);
  });

  it('refuses a code the issuer granted to another client', async () => {
    // Prepare: the console's sign-in, its authorization request sent as another client.
    const { transaction, callbackUrl } = await authorizeAtIssuer('other-client');

    // Act
    const answer = await fetch(callbackUrl, { headers: { cookie: transaction }, redirect: 'manual' });

    // Assess
    expect(answer.status).toBe(400);
    expect(answer.headers.get('set-cookie') ?? '').not.toContain(`${SESSION_COOKIE}=`);
  });

  it('signs out: the session cookie is gone and the console sends the browser to sign in again', async () => {
    // Prepare
    const { context, page } = await newPage();
    await signIn(page);

    // Act
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(`${consoleUrl}signed-out`);
    const gallery = await context.request.get(consoleUrl, { maxRedirects: 0 });

    // Assess: (the issuer's own session is still open: it would sign the browser straight back in)
    await page.getByRole('heading', { name: 'Signed out' }).waitFor();
    expect((await context.cookies()).map((cookie) => cookie.name)).not.toContain(SESSION_COOKIE);
    expect(gallery.status()).toBe(303);
    expect(gallery.headers().location).toMatch(/^\/console\/sign-in\?/);
    await context.close();
  });
});
