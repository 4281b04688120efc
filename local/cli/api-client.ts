import { createHash, createHmac } from 'node:crypto';
import { fromNodeProviderChain } from '@aws-sdk/credential-providers';
import { SignatureV4 } from '@smithy/signature-v4';
import * as z from 'zod';
import { errorBodySchema } from '../../functions/api/schemas.js';
import { ApiAnswerError, ApiUnreachableError, UnexpectedAnswerError, UsageError } from './errors.js';
import { httpUrlSchema, parseSetting, settingOf } from './settings.js';

export const AUTH_MODES = ['iam', 'bearer', 'none'] as const;
export type AuthMode = (typeof AUTH_MODES)[number];

/** The local server `npm start` runs. */
export const DEFAULT_API_URL = 'http://127.0.0.1:3000';

type Credentials = ConstructorParameters<typeof SignatureV4>[0]['credentials'];

/** Where the API is and how to authenticate to it. */
export interface ApiTarget {
  /** Base URL without a trailing slash, stage included (`https://…/prod`). */
  readonly baseUrl: string;
  readonly auth:
    | { readonly mode: 'none' }
    | { readonly mode: 'bearer'; readonly token: string }
    | { readonly mode: 'iam'; readonly region: string; readonly credentials: Credentials };
}

/** The variables the CLI reads: the API, its auth, and AWS's region. */
export interface ApiEnv {
  readonly SD35_API_URL?: string;
  readonly SD35_AUTH?: string;
  readonly SD35_API_TOKEN?: string;
  /** The name the CLI read the token from first; still honoured. */
  readonly API_TOKEN?: string;
  readonly AWS_REGION?: string;
  readonly AWS_DEFAULT_REGION?: string;
}

/**
 * Resolves the API target from flags, then the environment. The auth mode, unless given
 * (`--auth`, `SD35_AUTH`), is `iam` for an `*.amazonaws.com` URL, `bearer` when a token is set,
 * otherwise `none`. IAM signs with the standard AWS credential chain, for the region in the URL
 * or `AWS_REGION`.
 *
 * @throws UsageError for a URL that is not http(s), an unknown mode, a bearer mode without a token,
 *   or IAM without a region.
 */
export function resolveApiTarget(
  flags: { readonly api?: string; readonly auth?: string },
  env: ApiEnv,
  credentials: () => Credentials = () => fromNodeProviderChain(),
): ApiTarget {
  const api = apiSetting(flags.api, env);
  const baseUrl = baseUrlOf(flags.api, env);
  const url = new URL(baseUrl);
  const token = env.SD35_API_TOKEN || env.API_TOKEN || undefined;

  const given = settingOf({ name: '--auth', value: flags.auth }, { name: 'SD35_AUTH', value: env.SD35_AUTH });
  const mode: AuthMode = given
    ? parseSetting(authModeSchema, given)
    : isAwsHost(url.hostname)
      ? 'iam'
      : token
        ? 'bearer'
        : 'none';
  // Who chose the mode, as the user wrote it: `--auth iam` or `SD35_AUTH=iam` (bearer without a
  // token and iam without a region are only possible when one of them did, or an AWS host's URL).
  const chosenBy = given?.from === '--auth' ? `--auth ${mode}` : `SD35_AUTH=${mode}`;

  if (mode === 'none') return { baseUrl, auth: { mode } };
  if (mode === 'bearer') {
    if (!token) throw new UsageError(`${chosenBy}: set the token in SD35_API_TOKEN (or API_TOKEN)`);
    return { baseUrl, auth: { mode, token } };
  }
  const region = regionOfUrl(url.hostname) ?? (env.AWS_REGION || env.AWS_DEFAULT_REGION || undefined);
  if (!region) {
    const why = given
      ? `${chosenBy}: no region in ${url.hostname}`
      : `${api?.from ?? '--api'}: ${url.hostname} is an AWS host, so auth is iam, and it names no region`;
    throw new UsageError(`${why}; set AWS_REGION to the API's region`);
  }
  return { baseUrl, auth: { mode, region, credentials: credentials() } };
}

const authModeSchema = z.string().refine((mode): mode is AuthMode => AUTH_MODES.includes(mode as AuthMode), {
  error: (issue) => `must be one of ${AUTH_MODES.join(', ')}, got ${JSON.stringify(issue.input)}`,
});

/** `--api`, else `SD35_API_URL`. */
const apiSetting = (flag: string | undefined, env: ApiEnv) =>
  settingOf({ name: '--api', value: flag }, { name: 'SD35_API_URL', value: env.SD35_API_URL });

/**
 * The API's base URL from `--api`, else `SD35_API_URL`, else the local server; without a trailing
 * slash.
 *
 * @throws UsageError when it is not an http(s) URL, naming the flag or the variable that gave it
 */
export function baseUrlOf(flag: string | undefined, env: ApiEnv): string {
  return parseSetting(
    httpUrlSchema,
    apiSetting(flag, env) ?? { value: DEFAULT_API_URL, from: 'the default' },
  );
}

/** The region of an `{api}.execute-api.{region}.amazonaws.com` host, if it is one. */
export function regionOfUrl(hostname: string): string | undefined {
  return /\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$/.exec(hostname)?.[1];
}

function isAwsHost(hostname: string): boolean {
  return /\.amazonaws\.com(\.cn)?$/.test(hostname);
}

export interface ApiRequest {
  readonly method: 'GET' | 'POST';
  /** Path below the base URL, e.g. `/v1/generations`. */
  readonly path: string;
  readonly query?: Readonly<Record<string, string | undefined>>;
  /** Sent as JSON. */
  readonly body?: unknown;
  /** Sent as it is, with its content type (an NDJSON batch), instead of `body`. */
  readonly text?: { readonly content: string; readonly contentType: string };
  readonly headers?: Readonly<Record<string, string>>;
}

/** A small client of the HTTP API: authenticates, maps error answers to `CliError`s, returns the JSON. */
export interface ApiClient {
  readonly baseUrl: string;
  /**
   * Sends the request and returns the parsed JSON answer, checked against `schema`.
   *
   * @throws ApiUnreachableError when the API cannot be reached
   * @throws ApiAnswerError for a 4xx/5xx answer (exit 2 for 400/404/409, 3 otherwise)
   * @throws UnexpectedAnswerError when a 2xx answer does not match `schema`
   */
  send<S extends z.ZodType>(request: ApiRequest, schema: S): Promise<{ raw: unknown; parsed: z.infer<S> }>;
}

/** Builds the client for `target`; `fetchFn` is injected for tests. */
export function createApiClient(target: ApiTarget, fetchFn: typeof fetch = fetch): ApiClient {
  const signer =
    target.auth.mode === 'iam'
      ? new SignatureV4({
          service: 'execute-api',
          region: target.auth.region,
          credentials: target.auth.credentials,
          sha256: NodeSha256,
        })
      : undefined;

  return {
    baseUrl: target.baseUrl,
    async send(request, schema) {
      const url = new URL(`${target.baseUrl}${request.path}`);
      for (const [name, value] of Object.entries(request.query ?? {}))
        if (value !== undefined) url.searchParams.set(name, value);
      const body =
        request.text?.content ?? (request.body === undefined ? undefined : JSON.stringify(request.body));
      const contentType = request.text?.contentType ?? 'application/json';
      let headers: Record<string, string> = {
        accept: 'application/json',
        ...(body === undefined ? {} : { 'content-type': contentType }),
        ...request.headers,
      };
      if (target.auth.mode === 'bearer') headers.authorization = `Bearer ${target.auth.token}`;
      if (signer) {
        const signed = await signer.sign({
          method: request.method,
          protocol: url.protocol,
          hostname: url.hostname,
          port: url.port ? Number(url.port) : undefined,
          path: url.pathname,
          query: Object.fromEntries(url.searchParams),
          headers: { ...headers, host: url.host },
          body,
        });
        // fetch sets Host itself, to the same value that was signed.
        const { host: _host, ...rest } = signed.headers;
        headers = rest;
      }

      let response: Response;
      try {
        response = await fetchFn(url, { method: request.method, headers, body });
      } catch (error) {
        const local = url.hostname === '127.0.0.1' || url.hostname === 'localhost';
        throw new ApiUnreachableError(
          `cannot reach ${url.origin}${local ? ' (is the local API running? `npm start`)' : ''}: ${reasonOf(error)}`,
          { cause: error },
        );
      }
      const text = await response.text();
      const raw = parseJson(text);
      if (!response.ok) throw answerError(response.status, raw, request);
      const parsed = schema.safeParse(raw);
      if (!parsed.success)
        throw new UnexpectedAnswerError(
          `${request.method} ${request.path} answered ${response.status} with a body that is not the API's: ${parsed.error.issues[0]?.message ?? 'not JSON'}`,
          { cause: parsed.error },
        );
      return { raw, parsed: parsed.data };
    },
  };
}

function answerError(status: number, raw: unknown, request: ApiRequest): ApiAnswerError {
  const ours = errorBodySchema.safeParse(raw);
  if (ours.success) {
    const hint = status === 401 ? ' (check SD35_API_TOKEN or --auth)' : '';
    return new ApiAnswerError(status, ours.data.error.type, `${status} ${ours.data.error.message}${hint}`);
  }
  // API Gateway answers its own refusals (IAM, throttling) as {"message": …}.
  const gateway = (raw as { message?: unknown } | undefined)?.message;
  const message = typeof gateway === 'string' ? gateway : `HTTP ${status}`;
  const hint = status === 403 ? ' (check the AWS credentials, the region and --auth)' : '';
  return new ApiAnswerError(
    status,
    status === 403 ? 'forbidden' : 'http_error',
    `${request.method} ${request.path}: ${status} ${message}${hint}`,
  );
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function reasonOf(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (error as Error).message;
}

/** SHA-256 (and HMAC-SHA-256 with a secret) in the shape the signer takes, from node:crypto. */
class NodeSha256 {
  #hash: ReturnType<typeof createHash> | ReturnType<typeof createHmac>;
  constructor(private readonly secret?: string | ArrayBuffer | ArrayBufferView) {
    this.#hash = this.#fresh();
  }

  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.#hash.update(typeof data === 'string' ? data : toBytes(data));
  }

  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.#hash.digest());
  }

  reset(): void {
    this.#hash = this.#fresh();
  }

  #fresh() {
    if (this.secret === undefined) return createHash('sha256');
    return createHmac('sha256', typeof this.secret === 'string' ? this.secret : toBytes(this.secret));
  }
}

function toBytes(data: ArrayBuffer | ArrayBufferView): Uint8Array {
  return ArrayBuffer.isView(data)
    ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
    : new Uint8Array(data);
}
