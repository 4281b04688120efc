import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Hono } from 'hono';
import * as z from 'zod';
import {
  ExecutionAlreadyExistsError,
  type ExecutionRecord,
  type ExecutionService,
} from '../functions/shared/execution-service.js';
import { listen } from './listen.js';

/**
 * The local channel between the engine's owner and the other processes of one `.local/` folder:
 * the execution port over HTTP on 127.0.0.1, as Step Functions' API is on AWS. Another process
 * (a second `npm start`, an `npm run generate` while `npm start` runs) starts, describes and
 * stops executions here instead of running them itself, so exactly one process runs them.
 * Every request carries the owner's bearer token, which only `.local/engine.json` (mode 0600) holds.
 */

/** What the owner reports about itself (`GET /health`), and `/healthz` shows. */
export interface EngineHealth {
  readonly owner: { readonly pid: number; readonly kind: EngineKind; readonly startedAt: string };
  /** Executions the owner runs now. */
  readonly executions: number;
  [key: string]: unknown;
}

export type EngineKind = 'server' | 'generate';

const startSchema = z.object({ name: z.string().min(1).max(80), input: z.record(z.string(), z.unknown()) });
const stopSchema = z.object({ error: z.string(), cause: z.string() });
const recordSchema = z.object({
  name: z.string(),
  status: z.enum(['RUNNING', 'SUCCEEDED', 'FAILED', 'TIMED_OUT', 'ABORTED', 'PENDING_REDRIVE']),
  startDate: z.iso.datetime(),
  stopDate: z.iso.datetime().optional(),
  input: z.unknown(),
  output: z.unknown().optional(),
  error: z.string().optional(),
  cause: z.string().optional(),
});

export interface ChannelServer {
  readonly url: string;
  readonly token: string;
  close(): Promise<void>;
}

/** Serves `executions` and `health` to the other processes of this folder. */
export async function serveEngineChannel(
  executions: ExecutionService,
  health: () => Promise<EngineHealth>,
): Promise<ChannelServer> {
  const token = randomBytes(32).toString('base64url');
  const expected = Buffer.from(`Bearer ${token}`);
  const app = new Hono();
  app.use(async (c, next) => {
    const given = Buffer.from(c.req.header('authorization') ?? '');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      return c.json({ error: 'unauthorized' }, 401);
    }
    await next();
  });
  // Liveness for the followers' checks every 2 s: no queries, unlike /health.
  app.get('/alive', (c) => c.body(null, 204));
  app.get('/health', async (c) => c.json(await health()));
  app.post('/executions', async (c) => {
    const body = startSchema.safeParse(await c.req.json().catch(() => undefined));
    if (!body.success) return c.json({ error: 'invalid', message: z.prettifyError(body.error) }, 400);
    try {
      const { startDate } = await executions.start(body.data.name, body.data.input);
      return c.json({ startDate: startDate.toISOString() });
    } catch (error) {
      if (error instanceof ExecutionAlreadyExistsError) {
        return c.json({ error: 'ExecutionAlreadyExists', message: error.message }, 409);
      }
      throw error;
    }
  });
  app.get('/executions/:name', async (c) => {
    const record = await executions.describe(c.req.param('name'));
    if (!record) return c.json({ error: 'ExecutionDoesNotExist' }, 404);
    return c.json({
      ...record,
      startDate: record.startDate.toISOString(),
      stopDate: record.stopDate?.toISOString(),
    });
  });
  app.post('/executions/:name/stop', async (c) => {
    const body = stopSchema.safeParse(await c.req.json().catch(() => undefined));
    if (!body.success) return c.json({ error: 'invalid', message: z.prettifyError(body.error) }, 400);
    await executions.stop(c.req.param('name'), body.data);
    return c.body(null, 204);
  });
  app.onError((error, c) => c.json({ error: 'internal', message: String(error) }, 500));
  const server: Server = await listen((request) => app.fetch(request), 0, '127.0.0.1');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    token,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The owner stopped answering (it ended, or was killed). */
export class EngineUnreachableError extends Error {
  override readonly name = 'EngineUnreachableError';
}

/** A client of an owner's channel. */
export interface EngineClient extends ExecutionService {
  health(): Promise<EngineHealth>;
}

/** The execution port of another process's engine, through its channel. */
export function engineClient(channel: { readonly url: string; readonly token: string }): EngineClient & {
  /** Resolves when the owner answers; rejects when it does not. */
  alive(): Promise<void>;
} {
  const call = async (method: string, path: string, body?: unknown): Promise<Response> => {
    try {
      return await fetch(`${channel.url}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${channel.token}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(30_000),
      });
    } catch (error) {
      throw new EngineUnreachableError(`The local engine at ${channel.url} does not answer`, {
        cause: error,
      });
    }
  };
  const failed = async (response: Response) =>
    new Error(`The local engine answered ${response.status}: ${await response.text()}`);
  return {
    async health() {
      const response = await call('GET', '/health');
      if (!response.ok) throw await failed(response);
      return (await response.json()) as EngineHealth;
    },
    async alive() {
      const response = await call('GET', '/alive');
      if (!response.ok) throw await failed(response);
    },
    async start(name, input) {
      const response = await call('POST', '/executions', { name, input });
      if (response.status === 409) {
        const { message } = (await response.json()) as { message: string };
        throw new ExecutionAlreadyExistsError(message);
      }
      if (!response.ok) throw await failed(response);
      const { startDate } = z.object({ startDate: z.iso.datetime() }).parse(await response.json());
      return { startDate: new Date(startDate) };
    },
    async describe(name): Promise<ExecutionRecord | undefined> {
      const response = await call('GET', `/executions/${encodeURIComponent(name)}`);
      if (response.status === 404) return undefined;
      if (!response.ok) throw await failed(response);
      const record = recordSchema.parse(await response.json());
      return {
        ...record,
        startDate: new Date(record.startDate),
        stopDate: record.stopDate === undefined ? undefined : new Date(record.stopDate),
      };
    },
    async stop(name, reason) {
      const response = await call('POST', `/executions/${encodeURIComponent(name)}/stop`, reason);
      if (!response.ok) throw await failed(response);
    },
  };
}
