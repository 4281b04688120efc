import { randomUUID } from 'node:crypto';
import { type Context, Hono } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import type { Clock } from '../../shared/clock.js';
import { describeError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import { idempotencyKeySchema } from '../schemas.js';
import { formValuesOf } from './form.js';
import { CreatePage } from './form-views.js';
import { CALLBACK_PATH, type OidcRelyingParty, OidcSignInError, SIGN_IN_SECONDS } from './oidc.js';
import { openSession, openTransaction, seal } from './oidc-session.js';
import { MAX_FORM_BYTES, page } from './page.js';
import { SESSION_COOKIE, safeNext } from './session.js';
import { CONSOLE_BASE, Layout } from './views.js';

/** The sign-in in flight (state, nonce, PKCE verifier): only the callback path ever receives it. */
export const TRANSACTION_COOKIE = 'sd35_console_signin';

/** How long an OIDC session lasts before the browser goes back through the issuer. @default 8 hours */
export const OIDC_SESSION_SECONDS = 8 * 60 * 60;

/** The console's sign-in through an OpenID Provider (`apiAuth.mode` `jwt` on AWS). */
export interface OidcConsoleSignIn {
  readonly relyingParty: OidcRelyingParty;
  /** The key that signs the session and transaction cookies (at least 32 characters). */
  readonly sessionKey: () => Promise<string>;
  /** @default {@link OIDC_SESSION_SECONDS} */
  readonly sessionSeconds?: number;
}

/** Paths a browser reaches before it has a session. */
const OPEN_PATHS = new Set([`${CONSOLE_BASE}/sign-in`, CALLBACK_PATH, `${CONSOLE_BASE}/signed-out`]);

// Keyed by the context, not the request: a body limit replaces `c.req.raw` further down the chain.
const subjects = new WeakMap<Context, string>();

/** The signed-in user's subject at the issuer, for a request that passed the OIDC check. */
export const signedInSubject = (c: Context): string | undefined => subjects.get(c);

/** Cookies over https are Secure; http is only ever the loopback server of `npm start`. */
const cookieFlags = (c: Context, path: string, maxAge: number) => ({
  httpOnly: true,
  // Lax, not Strict: the session is set at the end of a redirect chain that began at the issuer
  // (another site), and a Strict cookie would not come with the first page load after it.
  sameSite: 'Lax' as const,
  path,
  maxAge,
  secure: new URL(c.req.url).protocol === 'https:',
});

/**
 * Adds the OIDC sign-in to the console: `GET /console/sign-in` (to the issuer),
 * `GET /console/auth/callback` (back, then a session cookie), `POST /console/sign-out`,
 * `GET /console/signed-out`, and a check of the session on every other console request.
 * A request without a live session is sent to sign in (GET) or refused (POST; the create form
 * comes back filled in, so nothing typed is lost). Register it before the pages.
 */
export function mountOidcSignIn(
  app: Hono,
  signIn: OidcConsoleSignIn,
  deps: { readonly clock: Clock; readonly logger: Logger },
): void {
  const { relyingParty } = signIn;
  const sessionSeconds = signIn.sessionSeconds ?? OIDC_SESSION_SECONDS;
  const redirectUriOf = (c: Context) => `${new URL(c.req.url).origin}${CALLBACK_PATH}`;
  const sub = new Hono();

  sub.get(`${CONSOLE_BASE}/sign-in`, async (c) => {
    const { url, transaction } = await relyingParty.start({
      redirectUri: redirectUriOf(c),
      next: safeNext(c.req.query('next')),
      nowMs: deps.clock.now(),
    });
    const value = seal(await signIn.sessionKey(), 'transaction', transaction);
    setCookie(c, TRANSACTION_COOKIE, value, cookieFlags(c, CALLBACK_PATH, SIGN_IN_SECONDS));
    return c.redirect(url.href, 303);
  });

  sub.get(CALLBACK_PATH, async (c) => {
    const key = await signIn.sessionKey();
    const transaction = openTransaction(key, getCookie(c, TRANSACTION_COOKIE), deps.clock.now());
    // One callback per transaction: the verifier is gone whatever happens next.
    deleteCookie(c, TRANSACTION_COOKIE, { path: CALLBACK_PATH });
    if (!transaction) {
      return page(
        c,
        <SignInProblem message="This sign-in has expired or was already used (or cookies are off). Sign in again." />,
        400,
      );
    }
    try {
      const user = await relyingParty.finish({
        callbackUrl: new URL(c.req.url),
        transaction,
        redirectUri: redirectUriOf(c),
      });
      const exp = Math.floor(deps.clock.now() / 1000) + sessionSeconds;
      setCookie(
        c,
        SESSION_COOKIE,
        seal(key, 'session', { ...user, exp }),
        cookieFlags(c, CONSOLE_BASE, sessionSeconds),
      );
      return c.redirect(transaction.next, 303);
    } catch (error) {
      if (!(error instanceof OidcSignInError)) throw error;
      deps.logger.warn('Console sign-in refused', { reason: error.reason, error: describeError(error) });
      return error.reason === 'issuer'
        ? page(
            c,
            <SignInProblem message="The identity provider could not be reached. Try again later." />,
            502,
          )
        : page(
            c,
            <SignInProblem message="The identity provider's answer was not valid for this sign-in." />,
            400,
          );
    }
  });

  sub.post(`${CONSOLE_BASE}/sign-out`, (c) => {
    deleteCookie(c, SESSION_COOKIE, { path: CONSOLE_BASE });
    return c.redirect(`${CONSOLE_BASE}/signed-out`, 303);
  });

  sub.get(`${CONSOLE_BASE}/signed-out`, async (c) =>
    page(c, <SignedOutPage issuerSignOut={await relyingParty.endSessionUrl()} />),
  );

  app.use(`${CONSOLE_BASE}/*`, async (c, next) => {
    const path = c.req.path;
    if (OPEN_PATHS.has(path) || path.startsWith(`${CONSOLE_BASE}/assets/`)) return next();
    // No cookie, no need for the key (a Secrets Manager read on a cold container).
    const cookie = getCookie(c, SESSION_COOKIE);
    const session = cookie ? openSession(await signIn.sessionKey(), cookie, deps.clock.now()) : undefined;
    if (session) {
      subjects.set(c, session.sub);
      return next();
    }
    if (c.req.method === 'GET') {
      const url = new URL(c.req.url);
      return c.redirect(
        `${CONSOLE_BASE}/sign-in?${new URLSearchParams({ next: url.pathname + url.search })}`,
        303,
      );
    }
    if (path === `${CONSOLE_BASE}/generations`) return formKeptForLater(c);
    return page(c, <SignInProblem message="Your sign-in has expired. Sign in again, then retry." />, 401);
  });
  app.route('/', sub);
}

/**
 * The create form as it was sent, with its own idempotency key, and a 401: sent again once the
 * user has signed in (in another tab), it starts one generation, and nothing typed is lost.
 */
async function formKeptForLater(c: Context): Promise<Response> {
  if (Number(c.req.header('content-length') ?? 0) > MAX_FORM_BYTES) {
    return page(c, <SignInProblem message="Your sign-in has expired. Sign in again, then retry." />, 401);
  }
  const form = await c.req.parseBody({ all: true });
  const key = idempotencyKeySchema.safeParse(form.idempotency_key);
  const notice =
    'Your sign-in has expired, so this form was not sent. Open the console in another tab to sign in again, then send this form again.';
  return page(
    c,
    <CreatePage
      values={formValuesOf(form)}
      problems={[]}
      notice={notice}
      idempotencyKey={key.success ? key.data : `console-${randomUUID()}`}
      signedIn={false}
    />,
    401,
  );
}

function SignInProblem(props: { message: string }) {
  return (
    <Layout title="Sign in">
      <h1>Sign in</h1>
      <p>{props.message}</p>
      <p>
        <a href={`${CONSOLE_BASE}/sign-in`}>Sign in</a>
      </p>
    </Layout>
  );
}

function SignedOutPage(props: { issuerSignOut?: string }) {
  return (
    <Layout title="Signed out">
      <h1>Signed out</h1>
      <p>This browser no longer has a console session.</p>
      <p>
        <a href={`${CONSOLE_BASE}/sign-in`}>Sign in again</a>
      </p>
      {props.issuerSignOut ? (
        <p>
          Your sign-in at the identity provider may still be open; a shared computer should also{' '}
          <a href={props.issuerSignOut}>sign out there</a>.
        </p>
      ) : null}
    </Layout>
  );
}
