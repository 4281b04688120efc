import type { Context } from 'hono';
import type { WebhookPolicy } from '../shared/webhook-url.js';
import type { OidcConsoleSignIn } from './console/oidc-routes.js';

/** How {@link createApiApp} is set up where it runs: the local server or the Lambda behind API Gateway. */
export interface ApiOptions {
  /**
   * When set, every request but `/healthz` needs `Authorization: Bearer <token>` (the local server;
   * on AWS, API Gateway authenticates with IAM before the Lambda runs).
   */
  readonly apiToken?: string;
  /**
   * Who made a request, recorded with each generation it creates: on Lambda, the IAM principal
   * or the JWT subject API Gateway verified. @default unknown
   */
  readonly callerOf?: (c: Context) => string | undefined;
  /**
   * Who may receive webhooks: a `webhook_url` the notifier would refuse is a 400 at creation.
   * @default the deployed policy: https to public addresses only
   */
  readonly webhookPolicy?: WebhookPolicy;
  /**
   * Serve the web console at `/console/` (and send `/` there), with the same token, webhook policy
   * and caller. On Lambda only in `jwt` mode, with `oidc` (docs/console.md). @default false
   */
  readonly console?: boolean;
  /** The console's sign-in through an OpenID Provider (see `ConsoleOptions.oidc`). @default none */
  readonly oidc?: OidcConsoleSignIn;
  /**
   * Whether API Gateway verified this request's caller. When given, a request it did not verify
   * reaches only `/healthz` and the console (which signs browsers in itself): the console's
   * gateway routes have no authorizer, and a path such as `/console/..%2fv1/generations` that
   * the gateway matched as a console route but the URL parser normalizes to an API route must
   * not get through unauthenticated. @default every request is trusted (the local server)
   */
  readonly verifiedByGateway?: (c: Context) => boolean;
  /**
   * The local engine's state (who runs the executions, how many wait, are granted and run, and
   * any that stopped making progress), served at `GET /v1/health` behind the same auth as the
   * API. @default none: the route does not exist (on AWS, Step Functions and the alarms say it)
   */
  readonly engineHealth?: () => Promise<Record<string, unknown>>;
}
