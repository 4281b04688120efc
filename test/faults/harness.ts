import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { type AddressInfo, connect, createServer as createTcpServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { AdjustableClock } from '../../functions/shared/clock.js';
import type { Logger } from '../../functions/shared/logger.js';
import { emulatorRunTimeModel } from '../../local/dashscope-emulator/run-time.js';
import {
  emulatorEndpoint,
  type RunningEmulator,
  startEmulator,
} from '../../local/dashscope-emulator/server.js';
import { createLocalRunner, type LocalRunner, type LocalRunnerOptions } from '../../local/runner.js';
import { LOCAL_BUCKET, type LocalS3, localS3Client, startLocalS3 } from '../../local/s3.js';
import { FAULT_SUITE } from '../support/configurations.js';
import { closeServer, listenOnLoopback } from '../support/loopback.js';
import type { LogLine } from './invariants.js';

/**
 * What the fault suite runs the workflow with: the stack's configuration but for a shorter
 * deadline (fewer polls to reach it), a 1 MB image cap (so an oversize image stays small) and a
 * 2 s submit timeout (so a slow answer takes seconds, not the default 30 s). Printed in the docs.
 */
export const SUITE_CONFIG = {
  ...FAULT_SUITE,
  submitTimeoutMs: 2000,
  size: '512*512',
  /** A download under 1 KB/s over 2 s is stalled: a trickle is caught in seconds, a busy machine is not. */
  stallWindowMs: 2000,
  minBytesPerSecond: 1024,
} as const;

/** The secret the functions read the DashScope API key from, as on AWS. */
export const API_KEY_SECRET_ID = 'sd35/dashscope-api-key';
/** The webhook signing secret of the suite's deliveries. */
const WEBHOOK_SECRET = 'fault-suite-webhook-secret';

/** A webhook delivery the suite's receiver took (it answers 204 to every one). */
export interface ReceivedWebhook {
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

/** A completion event, as the notifier published it. */
export interface PublishedEvent {
  readonly detailType: string;
  readonly detail: Record<string, unknown>;
}

/** What one case may hook into; cleared after each case. */
export interface CaseHooks {
  /** Runs before every S3 call of the workflow's functions (throw to fail the call). */
  beforeS3Send?: (command: object) => Promise<void> | void;
  /** Wraps every Task invocation, see `LocalRunnerOptions.interceptTask`. */
  interceptTask?: LocalRunnerOptions['interceptTask'];
  /** Runs before every read of the API key's secret (throw as Secrets Manager would). */
  beforeSecretRead?: () => void;
}

/** s3rver that a case can stop and start again behind the same address, on the same data directory. */
export interface RestartableS3 {
  readonly bucket: string;
  /** s3rver's data folder, kept across restarts. */
  readonly directory: string;
  /** Its address, the same after a restart. */
  readonly endpoint: string;
  /** A client of its own, for the suite's checks (the workflow's goes through the fault hooks). */
  readonly client: S3Client;
  readonly up: boolean;
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops s3rver and gives its address back. */
  close(): Promise<void>;
}

/** Everything the fault suite runs against, started once for the file. */
export interface FaultSuite {
  readonly clock: AdjustableClock;
  readonly emulator: RunningEmulator;
  readonly s3: RestartableS3;
  readonly runner: LocalRunner;
  readonly hooks: CaseHooks;
  readonly logs: LogLine[];
  readonly events: PublishedEvent[];
  /** A loopback webhook receiver: its URL, and what it received (cleared by each case). */
  readonly webhooks: { readonly url: string; readonly received: ReceivedWebhook[] };
  close(): Promise<void>;
}

/**
 * Starts the emulator (with the account's real limits: one task running, 2 submits/s, 20 task
 * queries/s), s3rver in a temporary folder, and the local runner over the synthesized workflow in
 * virtual time, retries included. The workflow's S3 client and its Task invocations go through
 * {@link CaseHooks}; its logs and events are captured.
 */
export async function startFaultSuite(): Promise<FaultSuite> {
  const clock = new AdjustableClock();
  const emulator = await startEmulator({ clock });
  const s3 = await startRestartableS3(await mkdtemp(path.join(tmpdir(), 'faults-')));
  const hooks: CaseHooks = {};
  const logs: LogLine[] = [];
  const events: PublishedEvent[] = [];
  const received: ReceivedWebhook[] = [];
  const receiver = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => {
      body += chunk;
    });
    request.on('end', () => {
      received.push({ headers: request.headers, body });
      response.writeHead(204).end();
    });
  });
  const webhookUrl = `${await listenOnLoopback(receiver)}/hooks/fault-suite`;
  const runner = createLocalRunner({
    dashscope: {
      ...emulatorEndpoint(emulator),
      runTimeModel: emulatorRunTimeModel(1),
      // Every function reads the key from a "Secrets Manager" that a case can make fail.
      apiKeySecret: {
        id: API_KEY_SECRET_ID,
        read: async () => {
          hooks.beforeSecretRead?.();
          return emulator.apiKey;
        },
      },
    },
    s3: { client: withS3Hooks(workflowS3Client(s3.endpoint, logs), hooks), bucket: s3.bucket },
    virtualWaits: clock,
    generation: FAULT_SUITE,
    environment: {
      DASHSCOPE_SUBMIT_TIMEOUT_MS: String(SUITE_CONFIG.submitTimeoutMs),
      DOWNLOAD_STALL_WINDOW_MS: String(SUITE_CONFIG.stallWindowMs),
      DOWNLOAD_MIN_BYTES_PER_SECOND: String(SUITE_CONFIG.minBytesPerSecond),
    },
    events: {
      publish: async (detailType, detail) => {
        events.push({ detailType, detail });
      },
    },
    logger: recordingLogger(logs),
    webhookSecret: WEBHOOK_SECRET,
    interceptTask: (state, invoke) => (hooks.interceptTask ? hooks.interceptTask(state, invoke) : invoke()),
  });
  return {
    clock,
    emulator,
    s3,
    runner,
    hooks,
    logs,
    events,
    webhooks: { url: webhookUrl, received },
    async close() {
      await closeServer(receiver);
      await emulator.close();
      await s3.close();
      s3.client.destroy();
      await rm(s3.directory, { recursive: true, force: true });
    },
  };
}

/** A logger that keeps every line, for the "no ERROR" invariant and the matrix. */
export function recordingLogger(lines: LogLine[]): Logger {
  const record = (level: LogLine['level']) => (message: string, extra?: Record<string, unknown>) => {
    lines.push({ level, message, extra });
  };
  return { debug: record('debug'), info: record('info'), warn: record('warn'), error: record('error') };
}

/**
 * A client with `localS3Client`'s settings. On Lambda the client has no logger, and the one line
 * the SDK still prints then (a console warning when a streamed upload breaks off) joins the
 * captured logs here instead of the console, marked as the SDK's; the per-call lines a configured
 * logger would get are dropped, as they are without one.
 */
function workflowS3Client(endpoint: string, lines: LogLine[]): S3Client {
  const warn = (message: unknown) => lines.push({ level: 'warn', message: String(message), source: 'sdk' });
  const drop = () => {};
  return localS3Client(endpoint, { logger: { trace: drop, debug: drop, info: drop, warn, error: drop } });
}

/**
 * The S3 client the workflow's functions get: the real one, with `hooks.beforeS3Send` run before
 * each call. Everything else (configuration, middleware) is the client's own, so lib-storage's
 * multipart uploads work through it unchanged.
 */
function withS3Hooks(client: S3Client, hooks: CaseHooks): S3Client {
  const send = async (command: object, ...rest: unknown[]) => {
    await hooks.beforeS3Send?.(command);
    return (client.send as (...args: unknown[]) => Promise<unknown>)(command, ...rest);
  };
  return new Proxy(client, {
    get(target, property) {
      if (property === 'send') return send;
      const value = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/**
 * s3rver behind a loopback port the suite holds from its start to its end, forwarding each
 * connection to s3rver while it runs and dropping it at once while it is stopped. The address then
 * stays the same across a restart without binding a port given back: meanwhile, another test
 * file's server or an outgoing connection could take that port (EADDRINUSE).
 */
async function startRestartableS3(directory: string): Promise<RestartableS3> {
  let server: LocalS3 | undefined = await startLocalS3({ directory });
  const connections = new Set<Socket>();
  const pair = (from: Socket, to: Socket) => {
    connections.add(from);
    from.on('close', () => {
      connections.delete(from);
      to.destroy();
    });
    from.on('error', () => to.destroy());
  };
  const front = createTcpServer((socket) => {
    if (!server) return void socket.destroy();
    const upstream = connect(Number(new URL(server.endpoint).port), '127.0.0.1');
    pair(socket, upstream);
    pair(upstream, socket);
    socket.pipe(upstream).pipe(socket);
  });
  await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
  const endpoint = `http://127.0.0.1:${(front.address() as AddressInfo).port}`;
  const client = localS3Client(endpoint);
  const stop = async () => {
    await server?.close();
    server = undefined;
    for (const socket of connections) socket.destroy();
  };
  return {
    bucket: LOCAL_BUCKET,
    directory,
    endpoint,
    client,
    get up() {
      return server !== undefined;
    },
    stop,
    async start() {
      server ??= await startLocalS3({ directory });
    },
    async close() {
      await stop();
      await new Promise<void>((resolve) => front.close(() => resolve()));
    },
  };
}
