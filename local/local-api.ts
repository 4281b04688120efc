import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { S3Client } from '@aws-sdk/client-s3';
import { createApiApp } from '../functions/api/app.js';
import type { OidcConsoleSignIn } from '../functions/api/console/oidc-routes.js';
import type { GenerationsDeps } from '../functions/api/generations.js';
import { apiDeps } from '../functions/api/handler.js';
import { apiSpec } from '../functions/api/spec.js';
import type { AdmissionQueue } from '../functions/shared/admission.js';
import { createS3ObjectStore } from '../functions/shared/aws/s3-object-store.js';
import { createS3Presigner } from '../functions/shared/aws/s3-presigner.js';
import type { Clock } from '../functions/shared/clock.js';
import { type Logger, silentLogger } from '../functions/shared/logger.js';
import { LOCAL_WEBHOOK_POLICY } from '../functions/shared/webhook-url.js';
import { type CloseOptions, type LocalEngine, type LocalEngineOptions, openLocalEngine } from './engine.js';
import { listen } from './listen.js';
import { type LocalPipeline, type LocalPipelineOptions, startLocalPipeline } from './pipeline.js';
import { watchPipelineRequestFiles } from './request-file-watch.js';

export interface LocalApiOptions extends LocalPipelineOptions {
  /** @default 3000; 0 picks a free port */
  readonly port?: number;
  /** Bearer token every request but /healthz must carry; unset = open (loopback only). */
  readonly apiToken?: string;
  /** Sign the console in through an OpenID Provider instead of the token. @default none */
  readonly consoleOidc?: OidcConsoleSignIn;
  /** Lifetime of presigned URLs. @default 3600 */
  readonly urlExpirySeconds?: number;
}

export interface LocalApi extends LocalPipeline {
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
}

/** What the API runs over, locally: a pipeline of this process, or the engine of a folder. */
interface ApiBackend {
  readonly executions: GenerationsDeps['executions'];
  readonly index: GenerationsDeps['index'];
  readonly batches: NonNullable<GenerationsDeps['batches']>;
  readonly s3: { readonly client: S3Client; readonly bucket: string };
  readonly clock: Clock;
  readonly admission: { readonly queue: AdmissionQueue };
  /** The API function's environment as synthesized, pointed at the local parts. */
  environment(name: 'api'): Record<string, string | undefined>;
  /** The engine's health, for `GET /v1/health`. */
  readonly health?: () => Promise<Record<string, unknown>>;
}

/**
 * The HTTP API on this machine: the same Hono app as on Lambda, over the local execution adapter
 * (the synthesized workflow in aws-local-stepfunctions), s3rver and the DashScope emulator
 * (or real DashScope when a key is given). Listens on 127.0.0.1 only. Its executions live as
 * long as this process (tests); `npm start` serves {@link startEngineApi}.
 *
 * @throws PortInUseError when the port is taken, before anything else is started
 */
export async function startLocalApi(options: LocalApiOptions = {}): Promise<LocalApi> {
  const served = await serveOnPort(options, async () => {
    const pipeline = await startLocalPipeline(options);
    // A batch the API writes under requests/batches/ starts as on AWS: the trigger reads it.
    const watch = watchPipelineRequestFiles(pipeline, options.logger ?? silentLogger);
    const backend: ApiBackend = {
      ...pipeline,
      admission: pipeline.runner.admission,
      environment: (name) => pipeline.runner.environment(name),
    };
    return {
      backend,
      value: pipeline,
      close: async () => {
        await watch.close();
        await pipeline.close();
      },
    };
  });
  return { ...served.value, url: served.url, close: served.close };
}

/** `npm start`'s API: over the engine of a local folder, as its owner or a follower of its owner. */
export interface EngineApi {
  readonly url: string;
  readonly engine: LocalEngine;
  /** Closes the port, then the engine; how many executions were left running for the next owner. */
  close(options?: CloseOptions): Promise<{ readonly unfinished: number }>;
}

/**
 * The HTTP API over the engine of `options.localDir` ({@link openLocalEngine}): this process
 * runs the executions when no other process of the folder does, else hands them to the one that does.
 *
 * @throws PortInUseError when the port is taken, before anything else is started
 */
export async function startEngineApi(
  options: LocalApiOptions & Omit<LocalEngineOptions, 'kind' | 'apiUrl'>,
): Promise<EngineApi> {
  let url: string | undefined;
  const served = await serveOnPort(
    options,
    async () => {
      const engine = await openLocalEngine({ ...options, kind: 'server', apiUrl: () => url });
      // The engine itself: its getters follow a change of owner.
      return {
        backend: engine,
        value: engine,
        close: (options?: CloseOptions) => engine.close(options),
      };
    },
    (listening) => {
      url = listening;
    },
  );
  return { url: served.url, engine: served.value, close: (options) => served.close(options) };
}

/**
 * Takes the port first (a taken port fails at once, before anything is started that must be
 * stopped), answers 503 while `start` runs, then serves the API over what it started.
 */
async function serveOnPort<T, R>(
  options: LocalApiOptions,
  start: () => Promise<{ backend: ApiBackend; value: T; close: (options?: CloseOptions) => Promise<R> }>,
  onListening?: (url: string) => void,
): Promise<{ url: string; value: T; close: (options?: CloseOptions) => Promise<R> }> {
  let serveApp: ((request: Request) => Response | Promise<Response>) | undefined;
  const server: Server = await listen(
    (request) => serveApp?.(request) ?? stillStarting(),
    options.port ?? 3000,
    '127.0.0.1',
  );
  const stopServer = async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  onListening?.(url);
  let started: Awaited<ReturnType<typeof start>>;
  try {
    started = await start();
  } catch (error) {
    await stopServer();
    throw error;
  }
  serveApp = createLocalApiApp(started.backend, options, options.logger ?? silentLogger).fetch;
  return {
    url,
    value: started.value,
    async close(closeOptions?: CloseOptions) {
      await stopServer();
      return started.close(closeOptions);
    },
  };
}

/**
 * The API as the stack deploys it (`apiDeps` over the API function's synthesized environment),
 * over the local parts.
 */
function createLocalApiApp(backend: ApiBackend, options: LocalApiOptions, logger: Logger) {
  const deps = (): GenerationsDeps =>
    apiDeps(
      apiSpec.parse({
        ...backend.environment('api'),
        ...(options.urlExpirySeconds ? { URL_EXPIRY_SECONDS: String(options.urlExpirySeconds) } : {}),
      }),
      {
        executions: backend.executions,
        index: backend.index,
        batches: backend.batches,
        objects: createS3ObjectStore(backend.s3.client),
        queue: backend.admission.queue,
        // Built per call: an engine's S3 changes when a follower takes over from its owner.
        presigner: (bucket, expirySeconds) => (key) =>
          createS3Presigner({ s3: backend.s3.client, bucket, expirySeconds })(key),
        clock: backend.clock,
        logger,
      },
    );
  return createApiApp(
    {
      ...deps(),
      // Made afresh for each cancel, from the DashScope endpoint of the moment (a new owner's).
      dashscopeAccounts: { client: (name) => dashscopeClientOf(deps(), name) },
    },
    // Receivers on this machine (http, loopback) are what local webhooks are for.
    {
      apiToken: options.apiToken,
      webhookPolicy: LOCAL_WEBHOOK_POLICY,
      console: true,
      oidc: options.consoleOidc,
      engineHealth: backend.health,
    },
  );
}

function dashscopeClientOf(deps: GenerationsDeps, name: string | undefined) {
  if (!deps.dashscopeAccounts) throw new Error('The API was built without DashScope accounts');
  return deps.dashscopeAccounts.client(name);
}

/** The answer while the pipeline starts (the port is already taken by then). */
function stillStarting(): Response {
  return Response.json(
    { error: { type: 'unavailable', message: 'The local API is starting; try again in a moment' } },
    { status: 503, headers: { 'retry-after': '1' } },
  );
}
