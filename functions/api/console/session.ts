import { createHmac, timingSafeEqual } from 'node:crypto';

/** The console's session cookie: HttpOnly, SameSite=Strict, scoped to `/console`. */
export const SESSION_COOKIE = 'sd35_console';

/** How long a sign-in lasts. @default 12 hours */
export const SESSION_SECONDS = 12 * 60 * 60;

const macOf = (token: string, issuedAt: number) =>
  createHmac('sha256', token).update(`sd35-console-session:v1:${issuedAt}`).digest('base64url');

/** Compares two secrets in constant time (for equal lengths). */
export function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * A session value for a browser that proved it knows the API token: the time it signed in and a
 * MAC keyed by the token. The cookie never holds the token, a changed token ends every session,
 * and a stolen cookie stops working after {@link SESSION_SECONDS}.
 */
export function issueSession(token: string, nowMs: number): string {
  const issuedAt = Math.floor(nowMs / 1000);
  return `v1.${issuedAt}.${macOf(token, issuedAt)}`;
}

/** Whether a cookie value is a live session issued for this token. Never throws. */
export function isValidSession(value: string | undefined, token: string, nowMs: number): boolean {
  const match = /^v1\.(\d{1,12})\.([\w-]{43})$/.exec(value ?? '');
  if (!match) return false;
  const issuedAt = Number(match[1]);
  const age = nowMs / 1000 - issuedAt;
  // A session from the future (a clock step back) is refused too: it cannot have been issued yet.
  if (age < -60 || age > SESSION_SECONDS) return false;
  return sameSecret(match[2] ?? '', macOf(token, issuedAt));
}

/** Where to go after signing in: only a console path, never another site (`//host`). */
export const safeNext = (next: unknown): string =>
  typeof next === 'string' && /^\/console\/[^\s\\]*$/.test(next) && !next.startsWith('//')
    ? next
    : '/console/';
