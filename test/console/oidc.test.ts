import { describe, expect, it } from 'vitest';
import { createOidcRelyingParty, OidcSignInError } from '../../functions/api/console/oidc.js';
import { openSession, openTransaction, seal } from '../../functions/api/console/oidc-session.js';
import { CLIENT_ID, challengeOf, fakeIssuer, goodClaims, ISSUER } from './fake-issuer.js';

const KEY = 'a-session-key-of-at-least-32-characters!';
const NOW = Date.parse('2026-03-01T12:00:00.000Z');
const REDIRECT = 'https://console.example/console/auth/callback';

describe('signed console cookies', () => {
  const session = { sub: 'alice', name: 'Alice', exp: NOW / 1000 + 60 };

  it('opens a session signed with the key before it expires', () => {
    expect(openSession(KEY, seal(KEY, 'session', session), NOW)).toEqual(session);
  });

  it('refuses a session once it has expired', () => {
    expect(openSession(KEY, seal(KEY, 'session', session), NOW + 61_000)).toBeUndefined();
  });

  it('refuses a session signed with another key', () => {
    expect(openSession(KEY, seal(`${KEY}-other`, 'session', session), NOW)).toBeUndefined();
  });

  it('refuses a session whose payload was edited', () => {
    // Prepare
    const [, mac] = seal(KEY, 'session', session).split('.');

    // Act
    const edited = `${Buffer.from(JSON.stringify({ ...session, sub: 'mallory' })).toString('base64url')}.${mac}`;

    // Assess
    expect(openSession(KEY, edited, NOW)).toBeUndefined();
  });

  it('refuses a sign-in transaction presented as a session', () => {
    // Prepare
    const transaction = {
      state: 's'.repeat(43),
      nonce: 'n'.repeat(43),
      verifier: 'v'.repeat(43),
      next: '/console/',
      exp: NOW / 1000 + 60,
    };

    // Act
    const value = seal(KEY, 'transaction', transaction);

    // Assess
    expect(openTransaction(KEY, value, NOW)).toEqual(transaction);
    expect(openSession(KEY, value, NOW)).toBeUndefined();
  });

  it('refuses to sign with a key shorter than 32 characters', () => {
    expect(() => seal('short', 'session', session)).toThrow(/at least 32/);
  });
});

function setup(claims: (nonce: string) => Record<string, unknown>) {
  let nonce = '';
  const issuer = fakeIssuer(() => claims(nonce));
  const party = createOidcRelyingParty({ issuer: ISSUER, clientId: CLIENT_ID, fetch: issuer.fetch });
  const start = async () => {
    const started = await party.start({ redirectUri: REDIRECT, next: '/console/new', nowMs: Date.now() });
    nonce = started.transaction.nonce;
    return started;
  };
  const callback = (params: Record<string, string>) =>
    new URL(`${REDIRECT}?${new URLSearchParams({ iss: ISSUER, ...params })}`);
  return { issuer, party, start, callback };
}

describe('the OIDC relying party', () => {
  it('asks for a code with state, nonce and the S256 challenge of its verifier', async () => {
    // Prepare
    const { start } = setup(goodClaims);

    // Act
    const { url, transaction } = await start();

    // Assess
    expect(url.origin + url.pathname).toBe(`${ISSUER}/authorize`);
    expect(Object.fromEntries(url.searchParams)).toEqual({
      response_type: 'code',
      client_id: CLIENT_ID,
      redirect_uri: REDIRECT,
      scope: 'openid',
      state: transaction.state,
      nonce: transaction.nonce,
      code_challenge: challengeOf(transaction.verifier),
      code_challenge_method: 'S256',
    });
  });

  it('draws a new state, nonce and verifier for every sign-in', async () => {
    // Prepare
    const { start } = setup(goodClaims);

    // Act
    const [a, b] = [(await start()).transaction, (await start()).transaction];

    // Assess
    expect(a.state).not.toBe(b.state);
    expect(a.nonce).not.toBe(b.nonce);
    expect(a.verifier).not.toBe(b.verifier);
  });

  it('redeems the code with the verifier and returns who signed in', async () => {
    // Prepare
    const { issuer, party, start, callback } = setup(goodClaims);
    const { transaction } = await start();

    // Act
    const user = await party.finish({
      callbackUrl: callback({ code: 'the-code', state: transaction.state }),
      transaction,
      redirectUri: REDIRECT,
    });

    // Assess
    expect(user).toEqual({ sub: 'alice', name: 'Alice' });
    expect(issuer.tokenRequests[0]?.body.get('code_verifier')).toBe(transaction.verifier);
    expect(issuer.tokenRequests[0]?.body.get('code')).toBe('the-code');
  });

  it('refuses a callback whose state is not this sign-in’s, before spending the code', async () => {
    // Prepare
    const { issuer, party, start, callback } = setup(goodClaims);
    const { transaction } = await start();

    // Act
    const finishing = party.finish({
      callbackUrl: callback({ code: 'the-code', state: 'another-state-of-another-sign-in' }),
      transaction,
      redirectUri: REDIRECT,
    });

    // Assess
    await expect(finishing).rejects.toMatchObject({ name: 'OidcSignInError', reason: 'refused' });
    expect(issuer.tokenRequests).toHaveLength(0);
  });

  it('refuses a callback that carries the issuer’s error', async () => {
    // Prepare
    const { party, start, callback } = setup(goodClaims);
    const { transaction } = await start();

    // Act
    const finishing = party.finish({
      callbackUrl: callback({ error: 'access_denied', state: transaction.state }),
      transaction,
      redirectUri: REDIRECT,
    });

    // Assess
    await expect(finishing).rejects.toThrow(/access_denied/);
  });

  it.each([
    ['another audience', (nonce: string) => ({ ...goodClaims(nonce), aud: 'another-client' })],
    ['another nonce', () => goodClaims('a-nonce-of-another-sign-in-0000000')],
    ['another issuer', (nonce: string) => ({ ...goodClaims(nonce), iss: 'https://other.example' })],
    [
      'an expired token',
      (nonce: string) => ({ ...goodClaims(nonce, Date.now() - 3_600_000), exp: Date.now() / 1000 - 600 }),
    ],
  ])('refuses an ID token with %s', async (_what, claims) => {
    // Prepare
    const { party, start, callback } = setup(claims);
    const { transaction } = await start();

    // Act
    const finishing = party.finish({
      callbackUrl: callback({ code: 'the-code', state: transaction.state }),
      transaction,
      redirectUri: REDIRECT,
    });

    // Assess
    await expect(finishing).rejects.toMatchObject({ name: 'OidcSignInError', reason: 'refused' });
  });

  it('reports an unreachable issuer as such, and reads its discovery again on the next sign-in', async () => {
    // Prepare
    const { issuer, start } = setup(goodClaims);
    issuer.failDiscovery(true);

    // Act
    const failed = await start().catch((error: unknown) => error);
    issuer.failDiscovery(false);
    const retried = await start();

    // Assess
    expect(failed).toBeInstanceOf(OidcSignInError);
    expect(failed).toMatchObject({ reason: 'issuer' });
    expect(retried.url.pathname).toBe('/authorize');
  });

  it('refuses an http issuer that is not on this machine', async () => {
    // Prepare
    const party = createOidcRelyingParty({ issuer: 'http://issuer.example', clientId: CLIENT_ID });

    // Act
    const starting = party.start({ redirectUri: REDIRECT, next: '/console/', nowMs: NOW });

    // Assess
    await expect(starting).rejects.toThrow(/only requests to HTTPS are allowed/);
  });
});
