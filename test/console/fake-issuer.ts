import { createHash, generateKeyPairSync, sign } from 'node:crypto';

/** The fake issuer's identifier. */
export const ISSUER = 'https://issuer.example';
export const CLIENT_ID = 'console-client';

const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...publicKey.export({ format: 'jwk' }), kid: 'k1', alg: 'RS256', use: 'sig' };

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** An RS256 ID token signed by the fake issuer. */
export function idToken(claims: Record<string, unknown>): string {
  const input = `${b64({ alg: 'RS256', kid: 'k1', typ: 'JWT' })}.${b64(claims)}`;
  return `${input}.${sign('sha256', Buffer.from(input), privateKey).toString('base64url')}`;
}

/** What the token endpoint was sent. */
export interface TokenRequest {
  readonly body: URLSearchParams;
}

/**
 * An OpenID Provider as a `fetch`: discovery, JWKS, and a token endpoint that answers with an
 * ID token built from the code's request by `claimsOf` (the test decides what is wrong with it).
 */
export function fakeIssuer(claimsOf: (request: TokenRequest) => Record<string, unknown>) {
  const tokenRequests: TokenRequest[] = [];
  let discoveryFails = false;
  const fetchFn = (async (input: Parameters<typeof fetch>[0], init?: RequestInit) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    if (url.pathname === '/.well-known/openid-configuration') {
      if (discoveryFails) return new Response('unavailable', { status: 503 });
      return Response.json({
        issuer: ISSUER,
        authorization_endpoint: `${ISSUER}/authorize`,
        token_endpoint: `${ISSUER}/token`,
        jwks_uri: `${ISSUER}/jwks`,
        end_session_endpoint: `${ISSUER}/logout`,
        id_token_signing_alg_values_supported: ['RS256'],
      });
    }
    if (url.pathname === '/jwks') return Response.json({ keys: [jwk] });
    if (url.pathname === '/token') {
      const request = { body: new URLSearchParams(String(init?.body ?? '')) };
      tokenRequests.push(request);
      return Response.json({
        access_token: 'at',
        token_type: 'Bearer',
        id_token: idToken(claimsOf(request)),
      });
    }
    return new Response('not found', { status: 404 });
  }) as typeof fetch;
  return {
    fetch: fetchFn,
    tokenRequests,
    failDiscovery(fails: boolean) {
      discoveryFails = fails;
    },
  };
}

/** Good claims for a code flow answer, around `nowMs`. */
export function goodClaims(nonce: string, nowMs = Date.now()): Record<string, unknown> {
  const now = Math.floor(nowMs / 1000);
  return { iss: ISSUER, aud: CLIENT_ID, sub: 'alice', name: 'Alice', nonce, iat: now, exp: now + 300 };
}

/** The S256 challenge of a verifier (RFC 7636 §4.2). */
export const challengeOf = (verifier: string) => createHash('sha256').update(verifier).digest('base64url');
