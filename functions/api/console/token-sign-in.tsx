import type { Hono } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import type { Clock } from '../../shared/clock.js';
import { HttpError } from '../http-error.js';
import { SignInPage } from './form-views.js';
import { formBodyLimit, page, textOf } from './page.js';
import {
  issueSession,
  isValidSession,
  SESSION_COOKIE,
  SESSION_SECONDS,
  safeNext,
  sameSecret,
} from './session.js';
import { CONSOLE_BASE } from './views.js';

/**
 * Adds the sign-in with the server's API token to the console: `GET`/`POST /console/sign-in`
 * (a form that asks for the token once, then an HttpOnly, SameSite=Strict session cookie that
 * stands for it), `POST /console/sign-out`, and a check of the session on every other console
 * request but the assets. Without a session a GET is sent to sign in and anything else is a 401.
 * Register it before the pages.
 */
export function mountTokenSignIn(app: Hono, token: string, deps: { readonly clock: Clock }): void {
  app.get(`${CONSOLE_BASE}/sign-in`, (c) => page(c, <SignInPage next={safeNext(c.req.query('next'))} />));

  app.post(`${CONSOLE_BASE}/sign-in`, formBodyLimit(), async (c) => {
    const form = await c.req.parseBody();
    const next = safeNext(form.next);
    if (!sameSecret(textOf(form.token), token)) {
      return page(c, <SignInPage next={next} problem="This is not the server's API token." />, 401);
    }
    setCookie(c, SESSION_COOKIE, issueSession(token, deps.clock.now()), {
      httpOnly: true,
      sameSite: 'Strict',
      path: CONSOLE_BASE,
      maxAge: SESSION_SECONDS,
      secure: new URL(c.req.url).protocol === 'https:',
    });
    return c.redirect(next, 303);
  });

  app.post(`${CONSOLE_BASE}/sign-out`, (c) => {
    deleteCookie(c, SESSION_COOKIE, { path: CONSOLE_BASE });
    return c.redirect(`${CONSOLE_BASE}/sign-in`, 303);
  });

  app.use(`${CONSOLE_BASE}/*`, async (c, next) => {
    if (c.req.path.startsWith(`${CONSOLE_BASE}/assets/`)) return next();
    if (isValidSession(getCookie(c, SESSION_COOKIE), token, deps.clock.now())) return next();
    if (c.req.method === 'GET') {
      const url = new URL(c.req.url);
      return c.redirect(
        `${CONSOLE_BASE}/sign-in?${new URLSearchParams({ next: url.pathname + url.search })}`,
        303,
      );
    }
    throw new HttpError(401, 'unauthorized', 'This server needs its API token.');
  });
}
