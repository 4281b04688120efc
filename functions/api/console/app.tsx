import { randomUUID } from 'node:crypto';
import { type Context, Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { csrf } from 'hono/csrf';
import { html } from 'hono/html';
import { HTTPException } from 'hono/http-exception';
import type { Child } from 'hono/jsx';
import * as z from 'zod';
import { describeError } from '../../shared/errors.js';
import { generationRequestSchema, withDefaultModel } from '../../shared/generation-request.js';
import type { WebhookPolicy } from '../../shared/webhook-url.js';
import { GENERATION_STATUSES, generationIdSchema } from '../../shared/workflow-state.js';
import { checkCreateRequest } from '../create-request.js';
import { InvalidCursorError } from '../cursor.js';
import {
  cancelGeneration,
  createGeneration,
  type GenerationsDeps,
  getGeneration,
  IdempotencyConflictError,
  listGenerations,
} from '../generations.js';
import { idempotencyKeySchema, listQuerySchema } from '../schemas.js';
import { CONSOLE_SCRIPT, CONSOLE_STYLES } from './assets.js';
import { formValuesOf, formValuesOfRequest, requestBodyOf, type SubmittedForm } from './form.js';
import { CreatePage, MessagePage, SignInPage } from './form-views.js';
import { mountOidcSignIn, type OidcConsoleSignIn, signedInSubject } from './oidc-routes.js';
import {
  issueSession,
  isValidSession,
  SESSION_COOKIE,
  SESSION_SECONDS,
  safeNext,
  sameSecret,
} from './session.js';
import { CONSOLE_BASE, GalleryCard, GalleryPage, GenerationPage, LiveSection, pageOf } from './views.js';

export { CONSOLE_BASE };

/** Generations per gallery page. */
export const GALLERY_PAGE_SIZE = 24;

/** Largest form body accepted: a form-encoded request is a few times its JSON. */
const MAX_FORM_BYTES = 64 * 1024;

export interface ConsoleOptions {
  /**
   * The server's API token. When set, the console asks for it once (a sign-in form) and keeps an
   * HttpOnly, SameSite=Strict session cookie; unset, the console is as open as the API.
   */
  readonly apiToken?: string;
  /**
   * Sign browsers in through an OpenID Provider instead (authorization code with PKCE), with a
   * session cookie the console signs; takes precedence over `apiToken` for the console. The
   * signed-in subject is each created generation's caller. @default none
   */
  readonly oidc?: OidcConsoleSignIn;
  /** Who may receive webhooks; the same policy as the API's create. @default the deployed policy */
  readonly webhookPolicy?: WebhookPolicy;
  /** Who made a request, recorded with each generation the form creates. @default unknown */
  readonly callerOf?: (c: Context) => string | undefined;
  /**
   * The local engine's state; every page then shows it on a status line under the navigation
   * (who runs the executions, how many wait, are granted, run, have stalled). @default no line
   */
  readonly engineHealth?: () => Promise<Record<string, unknown>>;
}

const HEADER_END = '</header>';

/**
 * The engine's status line: `<p class="engine-status" role="status">` with who runs the
 * executions and the counts (numbers and fixed words only: nothing in it needs escaping).
 */
async function engineStatusLine(health: () => Promise<Record<string, unknown>>): Promise<string> {
  const parsed = engineStatusSchema.safeParse(await health().catch(() => undefined));
  if (!parsed.success) return '<p class="engine-status" role="status">Local engine: not answering</p>';
  const { owner, waiting, granted, running, stalled } = parsed.data;
  const who = owner.kind === 'server' ? 'npm start' : 'npm run generate';
  const parts = [`${waiting} waiting`, `${granted} granted`, `${running} running`];
  if (stalled.length > 0) parts.push(`<strong>${stalled.length} stalled</strong>`);
  return `<p class="engine-status" role="status">Local engine: ${who} (PID ${owner.pid}) · ${parts.join(' · ')}</p>`;
}

const engineStatusSchema = z.object({
  owner: z.object({ pid: z.int(), kind: z.enum(['server', 'generate']) }),
  waiting: z.int().nonnegative(),
  granted: z.int().nonnegative(),
  running: z.int().nonnegative(),
  stalled: z.array(z.unknown()),
});

/** Whether a path belongs to the console (it authenticates on its own). */
export const isConsolePath = (path: string) => path === CONSOLE_BASE || path.startsWith(`${CONSOLE_BASE}/`);

/** A full page, with its doctype. */
const page = (c: Context, node: Child, status: 200 | 400 | 401 | 403 | 404 | 409 | 500 = 200) =>
  c.html(html`<!doctype html>${node}`, status);

const textOf = (value: SubmittedForm[string] | undefined) => (typeof value === 'string' ? value : '');

/**
 * The web console: server-rendered pages over the API's own generations logic (the index, the
 * cursors, the request schema), mounted by the API app at `/console`. One small script follows
 * running generations by fetching server-rendered fragments; pages carry a strict CSP, POSTs are
 * CSRF-checked (Origin / Sec-Fetch-Site), and with an API token a session cookie stands for it.
 */
export function createConsoleApp(deps: GenerationsDeps, options: ConsoleOptions = {}): Hono {
  const app = new Hono();
  const at = (path: string) => `${CONSOLE_BASE}${path}`;
  const oidc = options.oidc;
  const token = oidc ? undefined : options.apiToken;
  const signedIn = Boolean(token ?? oidc);
  const callerOf = oidc ? signedInSubject : options.callerOf;

  // Images come from presigned URLs on the bucket's origin: the one origin the CSP lets images from.
  let imageOrigin: Promise<string> | undefined;
  const imageOriginOf = () => {
    imageOrigin ??= deps.presign('generations/').then(
      (signed) => new URL(signed.url).origin,
      () => {
        imageOrigin = undefined;
        return '';
      },
    );
    return imageOrigin;
  };

  app.use(at('/*'), async (c, next) => {
    await next();
    const images = await imageOriginOf();
    c.header(
      'Content-Security-Policy',
      [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        `img-src 'self'${images ? ` ${images}` : ''}`,
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
      ].join('; '),
    );
    c.header('X-Content-Type-Options', 'nosniff');
    c.header('X-Frame-Options', 'DENY');
    c.header('Referrer-Policy', 'no-referrer');
    // Pages hold presigned links that expire: never cache them. The assets say their own.
    if (!c.res.headers.has('Cache-Control')) c.header('Cache-Control', 'no-store');
  });

  const { engineHealth } = options;
  if (engineHealth) {
    app.use(at('/*'), async (c, next) => {
      await next();
      if (!c.res.headers.get('Content-Type')?.startsWith('text/html')) return;
      const body = await c.res.text();
      if (!body.includes(HEADER_END)) {
        c.res = new Response(body, c.res);
        return;
      }
      const line = await engineStatusLine(engineHealth);
      c.res = new Response(body.replace(HEADER_END, `${HEADER_END}${line}`), c.res);
    });
  }

  app.use(at('/*'), csrf());

  app.get(at('/assets/console.js'), (c) =>
    c.body(CONSOLE_SCRIPT, 200, {
      'Content-Type': 'text/javascript; charset=utf-8',
      'Cache-Control': 'public, max-age=300',
    }),
  );
  app.get(at('/assets/console.css'), (c) =>
    c.body(CONSOLE_STYLES, 200, {
      'Content-Type': 'text/css; charset=utf-8',
      'Cache-Control': 'public, max-age=300',
    }),
  );

  if (oidc) mountOidcSignIn(app, oidc, deps);
  if (token) {
    app.get(at('/sign-in'), (c) => page(c, <SignInPage next={safeNext(c.req.query('next'))} />));
    app.post(at('/sign-in'), bodyLimit({ maxSize: MAX_FORM_BYTES }), async (c) => {
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
    app.post(at('/sign-out'), (c) => {
      deleteCookie(c, SESSION_COOKIE, { path: CONSOLE_BASE });
      return c.redirect(`${CONSOLE_BASE}/sign-in`, 303);
    });
    app.use(at('/*'), async (c, next) => {
      if (c.req.path.startsWith(`${CONSOLE_BASE}/assets/`)) return next();
      if (isValidSession(getCookie(c, SESSION_COOKIE), token, deps.clock.now())) return next();
      if (c.req.method === 'GET') {
        const url = new URL(c.req.url);
        return c.redirect(
          `${CONSOLE_BASE}/sign-in?${new URLSearchParams({ next: url.pathname + url.search })}`,
          303,
        );
      }
      return page(c, <MessagePage title="Sign in first" message="This server needs its API token." />, 401);
    });
  }

  app.get(CONSOLE_BASE, (c) => c.redirect(at('/'), 301));
  app.get(at('/'), async (c) => {
    const given = Object.entries(c.req.query()).filter(([, value]) => value !== '');
    const query = listQuerySchema.safeParse({ ...Object.fromEntries(given), limit: GALLERY_PAGE_SIZE });
    if (!query.success) {
      const message = 'Only ?status= (one of the statuses) and a cursor from this page are understood.';
      return page(
        c,
        <MessagePage title="Not a gallery address" message={message} signedIn={signedIn} />,
        400,
      );
    }
    try {
      const { data, nextCursor } = await listGenerations(query.data, deps, { presign: true });
      return page(
        c,
        <GalleryPage
          items={data}
          status={query.data.status}
          statuses={GENERATION_STATUSES}
          nextCursor={nextCursor}
          paged={query.data.cursor !== undefined}
          signedIn={signedIn}
        />,
      );
    } catch (error) {
      if (!(error instanceof InvalidCursorError)) throw error;
      const message = `This page link ${error.message}; start again from the newest.`;
      return page(
        c,
        <MessagePage title="Not a gallery address" message={message} signedIn={signedIn} />,
        400,
      );
    }
  });

  const defaults = () => {
    const request = generationRequestSchema.parse(withDefaultModel({ prompt: '-' }, deps.defaultModel));
    return { ...formValuesOfRequest(request), prompt: '' };
  };
  const createPage = (
    c: Context,
    props: Omit<Parameters<typeof CreatePage>[0], 'idempotencyKey' | 'signedIn'>,
    status: 200 | 400 | 409 = 200,
  ) =>
    page(c, <CreatePage {...props} idempotencyKey={`console-${randomUUID()}`} signedIn={signedIn} />, status);

  app.get(at('/new'), async (c) => {
    const from = c.req.query('from');
    const source =
      from && generationIdSchema.safeParse(from).success ? await getGeneration(from, deps) : undefined;
    const values = source?.request ? formValuesOfRequest(source.request) : defaults();
    return createPage(c, { values, problems: [] });
  });

  app.post(at('/generations'), bodyLimit({ maxSize: MAX_FORM_BYTES }), async (c) => {
    const form = await c.req.parseBody({ all: true });
    const values = formValuesOf(form);
    const checked = checkCreateRequest(requestBodyOf(values), {
      defaultModel: deps.defaultModel,
      webhookPolicy: options.webhookPolicy,
    });
    if (!checked.ok) return createPage(c, { values, problems: checked.problems }, 400);
    // The form's own key: a double click or a resent POST starts nothing twice.
    const key = idempotencyKeySchema.safeParse(textOf(form.idempotency_key));
    try {
      const created = await createGeneration(
        checked.request,
        { idempotencyKey: key.success ? key.data : undefined, caller: callerOf?.(c) },
        deps,
      );
      return c.redirect(pageOf(created.id), 303);
    } catch (error) {
      if (!(error instanceof IdempotencyConflictError)) throw error;
      const notice = 'This form was already sent with other values. Check them and send it again.';
      return createPage(c, { values, problems: [], notice }, 409);
    }
  });

  const generationOr404 = async (c: Context) => {
    const id = c.req.param('id') ?? '';
    return generationIdSchema.safeParse(id).success ? getGeneration(id, deps) : undefined;
  };
  const notFound = (c: Context) =>
    page(
      c,
      <MessagePage title="Not found" message="There is no such generation." signedIn={signedIn} />,
      404,
    );

  app.get(at('/generations/:id'), async (c) => {
    const view = await generationOr404(c);
    return view ? page(c, <GenerationPage view={view} signedIn={signedIn} />) : notFound(c);
  });
  app.get(at('/generations/:id/live'), async (c) => {
    const view = await generationOr404(c);
    return view ? c.html(<LiveSection view={view} />) : notFound(c);
  });
  app.get(at('/generations/:id/card'), async (c) => {
    const view = await generationOr404(c);
    return view ? c.html(<GalleryCard view={view} />) : notFound(c);
  });
  app.post(at('/generations/:id/cancel'), async (c) => {
    const id = c.req.param('id') ?? '';
    const view = generationIdSchema.safeParse(id).success ? await cancelGeneration(id, deps) : undefined;
    return view ? c.redirect(pageOf(view.id), 303) : notFound(c);
  });

  app.onError((error, c) => {
    if (error instanceof HTTPException && error.status === 403) {
      const message = 'This form was not sent from this console, so it was refused (CSRF protection).';
      return page(c, <MessagePage title="Refused" message={message} signedIn={signedIn} />, 403);
    }
    if (error instanceof HTTPException) return error.getResponse();
    deps.logger.error('Unhandled console error', { path: c.req.path, reason: describeError(error) });
    return page(
      c,
      <MessagePage
        title="Something went wrong"
        message="The console could not answer; see the server log."
      />,
      500,
    );
  });

  return app;
}
