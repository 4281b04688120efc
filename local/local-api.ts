import type { AddressInfo } from 'node:net';
import { createApiApp } from '../functions/api/app.js';
import type { OidcConsoleSignIn } from '../functions/api/console/oidc-routes.js';
import { createS3Presigner } from '../functions/shared/aws/s3-presigner.js';
import { createDashScopeClient } from '../functions/shared/dashscope/client.js';
import { silentLogger } from '../functions/shared/logger.js';
import { LOCAL_WEBHOOK_POLICY } from '../functions/shared/webhook-url.js';
import { listen } from './listen.js';
import { type LocalPipeline, type LocalPipelineOptions, startLocalPipeline } from './pipeline.js';

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

/**
 * The HTTP API on this machine: the same Hono app as on Lambda, over the local execution adapter
 * (the synthesized workflow in aws-local-stepfunctions), s3rver and the DashScope emulator
 * (or real DashScope when a key is given). Listens on 127.0.0.1 only.
 *
 * @throws PortInUseError when the port is taken, before anything else is started
 */
export async function startLocalApi(options: LocalApiOptions = {}): Promise<LocalApi> {
  // The port first: a taken port fails at once, before anything is started that must be stopped.
  let serveApp: ((request: Request) => Response | Promise<Response>) | undefined;
  const server = await listen(
    (request) => serveApp?.(request) ?? stillStarting(),
    options.port ?? 3000,
    '127.0.0.1',
  );
  const stopServer = async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  let pipeline: LocalPipeline;
  try {
    pipeline = await startLocalPipeline(options);
  } catch (error) {
    await stopServer();
    throw error;
  }
  const { s3, dashscope } = pipeline;
  const app = createApiApp(
    {
      executions: pipeline.executions,
      index: pipeline.index,
      presign: createS3Presigner({
        s3: s3.client,
        bucket: s3.bucket,
        expirySeconds: options.urlExpirySeconds ?? 3600,
      }),
      dashscope: createDashScopeClient({ baseUrl: dashscope.baseUrl, apiKey: async () => dashscope.apiKey }),
      clock: pipeline.clock,
      logger: options.logger ?? silentLogger,
      admission: pipeline.runner.admission,
      defaultModel: pipeline.runner.defaultModel,
    },
    // Receivers on this machine (http, loopback) are what local webhooks are for.
    {
      apiToken: options.apiToken,
      webhookPolicy: LOCAL_WEBHOOK_POLICY,
      console: true,
      oidc: options.consoleOidc,
    },
  );
  serveApp = app.fetch;
  const { port } = server.address() as AddressInfo;

  return {
    ...pipeline,
    url: `http://127.0.0.1:${port}`,
    async close() {
      await stopServer();
      await pipeline.close();
    },
  };
}

/** The answer while the pipeline starts (the port is already taken by then). */
function stillStarting(): Response {
  return Response.json(
    { error: { type: 'unavailable', message: 'The local API is starting; try again in a moment' } },
    { status: 503, headers: { 'retry-after': '1' } },
  );
}
