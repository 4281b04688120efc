import { createHmac } from 'node:crypto';
import * as z from 'zod';
import { sameSecret } from './session.js';

/**
 * Cookie values the console signs itself when it signs browsers in through an OpenID Provider:
 * the session after the callback, and the sign-in transaction (state, nonce, PKCE verifier)
 * between the redirect to the issuer and the callback. Each is `payload.mac`: base64url JSON and
 * an HMAC-SHA256 keyed by the session key and the value's purpose, so a transaction can never be
 * presented as a session, and an edited payload is refused. Nothing in them is a secret of the
 * server: the verifier belongs to this one browser's sign-in, and is useless once its code is spent.
 */

/** The smallest session key accepted: 32 bytes of entropy, written out. */
export const MIN_SESSION_KEY_LENGTH = 32;

/** A session: who signed in (the ID token's `sub`, and a name to show) and until when. */
export const oidcSessionSchema = z.strictObject({
  /** The ID token's subject at the issuer. */
  sub: z.string().min(1).max(255),
  /** `name`, `preferred_username` or `email` from the ID token, for the page header. */
  name: z.string().max(200).optional(),
  /** Expiry, in seconds since the epoch. */
  exp: z.int().positive(),
});
export type OidcSession = z.infer<typeof oidcSessionSchema>;

/** A sign-in in flight: what the callback must find, and where to go afterwards. */
export const signInTransactionSchema = z.strictObject({
  state: z.string().min(22).max(128),
  nonce: z.string().min(22).max(128),
  /** The PKCE code verifier (RFC 7636: 43 to 128 characters). */
  verifier: z.string().min(43).max(128),
  /** A console path to return to. */
  next: z.string().startsWith('/console/').max(2000),
  exp: z.int().positive(),
});
export type SignInTransaction = z.infer<typeof signInTransactionSchema>;

type Purpose = 'session' | 'transaction';

const macOf = (key: string, purpose: Purpose, payload: string) =>
  createHmac('sha256', key).update(`sd35-console-oidc:v1:${purpose}:${payload}`).digest('base64url');

/**
 * Signs a value for a cookie.
 * @throws Error when the key is shorter than {@link MIN_SESSION_KEY_LENGTH}
 */
export function seal(key: string, purpose: Purpose, value: OidcSession | SignInTransaction): string {
  if (key.length < MIN_SESSION_KEY_LENGTH) {
    throw new Error(`The console session key must be at least ${MIN_SESSION_KEY_LENGTH} characters`);
  }
  const payload = Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${payload}.${macOf(key, purpose, payload)}`;
}

function open(key: string, purpose: Purpose, value: string | undefined, nowMs: number): unknown {
  const match = /^([\w-]{1,4000})\.([\w-]{43})$/.exec(value ?? '');
  if (!match || key.length < MIN_SESSION_KEY_LENGTH) return undefined;
  const [, payload = '', mac = ''] = match;
  if (!sameSecret(mac, macOf(key, purpose, payload))) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  const exp = (parsed as { exp?: unknown } | null)?.exp;
  return typeof exp === 'number' && exp * 1000 > nowMs ? parsed : undefined;
}

/** The session a cookie holds, if it was signed with this key and has not expired. Never throws. */
export function openSession(key: string, value: string | undefined, nowMs: number): OidcSession | undefined {
  const parsed = oidcSessionSchema.safeParse(open(key, 'session', value, nowMs));
  return parsed.success ? parsed.data : undefined;
}

/** The sign-in transaction a cookie holds, if signed with this key and not expired. Never throws. */
export function openTransaction(
  key: string,
  value: string | undefined,
  nowMs: number,
): SignInTransaction | undefined {
  const parsed = signInTransactionSchema.safeParse(open(key, 'transaction', value, nowMs));
  return parsed.success ? parsed.data : undefined;
}
