import * as oauth from 'oauth4webapi';
import { describeError } from '../../shared/errors.js';
import type { SignInTransaction } from './oidc-session.js';

/** How long a sign-in may take at the issuer before its callback is refused. @default 10 minutes */
export const SIGN_IN_SECONDS = 10 * 60;

/** Where the issuer sends the browser back, under the console. */
export const CALLBACK_PATH = '/console/auth/callback';

/** The console as an OpenID Connect relying party (authorization code flow with PKCE). */
export interface OidcSettings {
  /** The issuer identifier; its discovery document is read from `/.well-known/openid-configuration`. */
  readonly issuer: string;
  /** The console's client id, registered at the issuer with the redirect URI `…/console/auth/callback`. */
  readonly clientId: string;
  /** A confidential client's secret (client_secret_basic). @default none: a public client */
  readonly clientSecret?: () => Promise<string>;
  /** Scopes asked for; `openid` is always added. @default ["openid"] */
  readonly scopes?: readonly string[];
  /** @default globalThis.fetch */
  readonly fetch?: typeof fetch;
  /** How long one request to the issuer may take. @default 10000 */
  readonly timeoutMs?: number;
}

/** Why a sign-in failed; the message never holds a code, a token or a secret. */
export class OidcSignInError extends Error {
  override readonly name = 'OidcSignInError';
  constructor(
    message: string,
    /** `issuer`: discovery or the token endpoint failed (retry later); `refused`: this sign-in is not valid. */
    readonly reason: 'issuer' | 'refused',
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Who signed in: the ID token's checked claims that the console keeps. */
export interface SignedInUser {
  readonly sub: string;
  readonly name?: string;
}

/** The two halves of a sign-in, and the issuer's sign-out page. */
export interface OidcRelyingParty {
  /**
   * A new sign-in: the issuer's authorization URL (with state, nonce and the PKCE challenge) and
   * the transaction the browser keeps (signed) until the callback.
   * @throws OidcSignInError (`issuer`) when the discovery document cannot be read
   */
  start(input: { redirectUri: string; next: string; nowMs: number }): Promise<{
    url: URL;
    transaction: SignInTransaction;
  }>;
  /**
   * Checks the callback against its transaction (state, `iss`), redeems the code with the PKCE
   * verifier, and checks the ID token (issuer, audience, expiry, nonce).
   * @throws OidcSignInError (`refused`) for an error answer, a state or nonce mismatch, a bad token;
   *   (`issuer`) when the issuer cannot be reached
   */
  finish(input: {
    callbackUrl: URL;
    transaction: SignInTransaction;
    redirectUri: string;
  }): Promise<SignedInUser>;
  /** The issuer's RP-initiated logout page, when it has one. Never throws. */
  endSessionUrl(): Promise<string | undefined>;
}

/** Only a loopback issuer may be plain http: `npm start` and the tests run one on this machine. */
const isLoopback = (url: URL) => ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);

/**
 * The console's OpenID Connect client over oauth4webapi: discovery (cached; a failed read is
 * retried by the next sign-in), authorization code with PKCE (S256), state and nonce.
 */
export function createOidcRelyingParty(settings: OidcSettings): OidcRelyingParty {
  const issuer = new URL(settings.issuer);
  const client: oauth.Client = { client_id: settings.clientId };
  const scope = [...new Set(['openid', ...(settings.scopes ?? [])])].join(' ');
  const timeoutMs = settings.timeoutMs ?? 10_000;
  const options = () => ({
    [oauth.customFetch]: settings.fetch ?? fetch,
    [oauth.allowInsecureRequests]: issuer.protocol === 'http:' && isLoopback(issuer),
    signal: AbortSignal.timeout(timeoutMs),
  });

  let discovered: Promise<oauth.AuthorizationServer> | undefined;
  const server = () => {
    discovered ??= oauth
      .discoveryRequest(issuer, { ...options(), algorithm: 'oidc' })
      .then((response) => oauth.processDiscoveryResponse(issuer, response))
      .catch((error: unknown) => {
        discovered = undefined;
        throw new OidcSignInError(
          `Could not read the discovery document of ${issuer.href}: ${describeError(error)}`,
          'issuer',
          { cause: error },
        );
      });
    return discovered;
  };

  return {
    async start({ redirectUri, next, nowMs }) {
      const as = await server();
      if (!as.authorization_endpoint) {
        throw new OidcSignInError(`${issuer.href} names no authorization_endpoint`, 'issuer');
      }
      const verifier = oauth.generateRandomCodeVerifier();
      const transaction: SignInTransaction = {
        state: oauth.generateRandomState(),
        nonce: oauth.generateRandomNonce(),
        verifier,
        next,
        exp: Math.floor(nowMs / 1000) + SIGN_IN_SECONDS,
      };
      const url = new URL(as.authorization_endpoint);
      url.search = new URLSearchParams({
        response_type: 'code',
        client_id: settings.clientId,
        redirect_uri: redirectUri,
        scope,
        state: transaction.state,
        nonce: transaction.nonce,
        code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
      }).toString();
      return { url, transaction };
    },

    async finish({ callbackUrl, transaction, redirectUri }) {
      const as = await server();
      let params: URLSearchParams;
      try {
        // Checks state, and the `iss` parameter (RFC 9207) when the issuer sends one.
        params = oauth.validateAuthResponse(as, client, callbackUrl, transaction.state);
      } catch (error) {
        throw refused('The callback does not answer this sign-in', error);
      }
      const auth = settings.clientSecret
        ? oauth.ClientSecretBasic(await settings.clientSecret())
        : oauth.None();
      let response: Response;
      try {
        response = await oauth.authorizationCodeGrantRequest(
          as,
          client,
          auth,
          params,
          redirectUri,
          transaction.verifier,
          options(),
        );
      } catch (error) {
        throw new OidcSignInError(
          `Could not reach the token endpoint of ${issuer.href}: ${describeError(error)}`,
          'issuer',
          { cause: error },
        );
      }
      let result: oauth.TokenEndpointResponse;
      try {
        result = await oauth.processAuthorizationCodeResponse(as, client, response, {
          expectedNonce: transaction.nonce,
          requireIdToken: true,
        });
      } catch (error) {
        throw refused('The issuer did not grant a valid ID token for this sign-in', error);
      }
      const claims = oauth.getValidatedIdTokenClaims(result);
      if (!claims) throw new OidcSignInError('The issuer returned no ID token', 'refused');
      const name = [claims.name, claims.preferred_username, claims.email].find(
        (value): value is string => typeof value === 'string' && value !== '',
      );
      return { sub: claims.sub, ...(name ? { name: name.slice(0, 200) } : {}) };
    },

    async endSessionUrl() {
      try {
        const endpoint = (await server()).end_session_endpoint;
        if (!endpoint) return undefined;
        const url = new URL(endpoint);
        url.searchParams.set('client_id', settings.clientId);
        return url.href;
      } catch {
        return undefined;
      }
    },
  };
}

/** The error an answer carries (`error`, `error_description`), without codes or tokens. */
function refused(what: string, error: unknown): OidcSignInError {
  const answer = error as { error?: unknown; error_description?: unknown } | undefined;
  const detail =
    typeof answer?.error === 'string'
      ? `${answer.error}${typeof answer.error_description === 'string' ? `: ${answer.error_description}` : ''}`
      : error instanceof Error
        ? error.message
        : String(error);
  return new OidcSignInError(`${what} (${detail})`, 'refused', { cause: error });
}
