import { type Context, Hono } from 'hono';
import type { WebhookPolicy } from '../../shared/webhook-url.js';
import type { GenerationsDeps } from '../generations.js';
import { mountActionRoutes } from './action-routes.js';
import { mountAssets } from './asset-routes.js';
import { mountBatchPages } from './batch-pages.js';
import { mountBrowseRoutes } from './browse-routes.js';
import { withEngineStatus } from './engine-status.js';
import { useErrorPages } from './error-pages.js';
import { mountOidcSignIn, type OidcConsoleSignIn, signedInSubject } from './oidc-routes.js';
import { sameOriginForms, securityHeaders } from './security.js';
import { mountTokenSignIn } from './token-sign-in.js';
import { CONSOLE_BASE } from './views.js';

export { GALLERY_PAGE_SIZE } from './browse-routes.js';
export { CONSOLE_BASE };

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

/** Whether a path belongs to the console (it authenticates on its own). */
export const isConsolePath = (path: string) => path === CONSOLE_BASE || path.startsWith(`${CONSOLE_BASE}/`);

/**
 * The web console: server-rendered pages over the API's own generations logic (the index, the
 * cursors, the request schema), mounted by the API app at `/console`. One small script follows
 * running generations by fetching server-rendered fragments; pages carry a strict CSP, POSTs are
 * CSRF-checked (Origin / Sec-Fetch-Site), and with an API token a session cookie stands for it.
 * Its parts, in the order a request meets them: the security headers, the engine's status line,
 * the CSRF check, the assets, the sign-in (OIDC or token), the pages (generations, batches, the
 * form and cancel), and the error pages.
 */
export function createConsoleApp(deps: GenerationsDeps, options: ConsoleOptions = {}): Hono {
  const app = new Hono();
  const { oidc, engineHealth } = options;
  const token = oidc ? undefined : options.apiToken;
  const signedIn = Boolean(token ?? oidc);

  app.use(`${CONSOLE_BASE}/*`, securityHeaders(deps.presign));
  if (engineHealth) app.use(`${CONSOLE_BASE}/*`, withEngineStatus(engineHealth));
  app.use(`${CONSOLE_BASE}/*`, sameOriginForms());
  mountAssets(app);
  if (oidc) mountOidcSignIn(app, oidc, deps);
  if (token) mountTokenSignIn(app, token, deps);
  mountBrowseRoutes(app, deps, signedIn);
  mountBatchPages(app, deps, signedIn);
  mountActionRoutes(app, deps, {
    signedIn,
    webhookPolicy: options.webhookPolicy,
    callerOf: oidc ? signedInSubject : options.callerOf,
  });
  useErrorPages(app, deps.logger, signedIn);
  return app;
}
