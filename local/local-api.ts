import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { serve } from '@hono/node-server';
import { createApiApp } from '../functions/api/app.js';
import { type AdjustableClock, type Clock, systemClock } from '../functions/shared/clock.js';
import { createDashScopeClient, DEFAULT_DASHSCOPE_BASE_URL } from '../functions/shared/dashscope/client.js';
import { type Logger, silentLogger } from '../functions/shared/logger.js';
import { type RunningEmulator, startEmulator } from './dashscope-emulator/server.js';
import { createLocalExecutionService, type LocalExecutionService } from './execution-service.js';
import { createLocalRunner } from './runner.js';
import { type LocalS3, startLocalS3 } from './s3.js';

export const PROJECT_ROOT = path.join(import.meta.dirname, '..');
/** Local state (s3rver data, copies of images) lives here, git-ignored. */
export const LOCAL_DIR = path.join(PROJECT_ROOT, '.local');

export interface LocalApiOptions {
  /** @default 3000; 0 picks a free port */
  readonly port?: number;
  /** Bearer token every request but /healthz must carry; unset = open (loopback only). */
  readonly apiToken?: string;
  /** s3rver's data folder. @default .local/s3 */
  readonly s3Directory?: string;
  /** Real DashScope instead of the emulator (the key never leaves this process but in the header). */
  readonly dashscopeApiKey?: string;
  readonly dashscopeBaseUrl?: string;
  /** Emulator speed-up of run times. @default 4 */
  readonly emulatorSpeed?: number;
  /** Tests: waits in virtual time on this clock, shared with the emulator. */
  readonly virtualWaits?: AdjustableClock;
  readonly retryIntervalMs?: number;
  /** Lifetime of presigned URLs. @default 3600 */
  readonly urlExpirySeconds?: number;
  readonly logger?: Logger;
}

export interface LocalApi {
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
  readonly s3: LocalS3;
  readonly emulator?: RunningEmulator;
  readonly executions: LocalExecutionService;
  close(): Promise<void>;
}

/**
 * The HTTP API on this machine: the same Hono app as on Lambda, over the local execution adapter
 * (the synthesized workflow in aws-local-stepfunctions), s3rver and the DashScope emulator
 * (or real DashScope when a key is given). Listens on 127.0.0.1 only.
 */
export async function startLocalApi(options: LocalApiOptions = {}): Promise<LocalApi> {
  const clock: Clock = options.virtualWaits ?? systemClock;
  const s3 = await startLocalS3({ directory: options.s3Directory ?? path.join(LOCAL_DIR, 's3') });
  const emulator = options.dashscopeApiKey
    ? undefined
    : await startEmulator({ speed: options.emulatorSpeed ?? 4, clock });
  const dashscope = emulator
    ? { baseUrl: emulator.url, apiKey: emulator.apiKey, resultHosts: ['127.0.0.1'], allowHttpResults: true }
    : {
        baseUrl: options.dashscopeBaseUrl ?? DEFAULT_DASHSCOPE_BASE_URL,
        apiKey: options.dashscopeApiKey ?? '',
      };
  const runner = createLocalRunner({
    dashscope,
    s3: { client: s3.client, bucket: s3.bucket },
    virtualWaits: options.virtualWaits,
    retryIntervalMs: options.retryIntervalMs,
    logger: options.logger,
  });
  const executions = createLocalExecutionService(runner, clock);
  const app = createApiApp(
    {
      executions,
      presign: (key) =>
        getSignedUrl(s3.client, new GetObjectCommand({ Bucket: s3.bucket, Key: key }), {
          expiresIn: options.urlExpirySeconds ?? 3600,
        }),
      dashscope: createDashScopeClient({ baseUrl: dashscope.baseUrl, apiKey: async () => dashscope.apiKey }),
      clock,
      logger: options.logger ?? silentLogger,
    },
    { apiToken: options.apiToken },
  );

  const server = await new Promise<Server>((resolve, reject) => {
    const started = serve({ fetch: app.fetch, port: options.port ?? 3000, hostname: '127.0.0.1' }, () =>
      resolve(started as Server),
    );
    (started as Server).once('error', reject);
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    s3,
    emulator,
    executions,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await emulator?.close();
      await s3.close();
    },
  };
}
