import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { GenerationView } from '../../functions/api/schemas.js';
import { AdjustableClock } from '../../functions/shared/clock.js';
import type { Logger } from '../../functions/shared/logger.js';
import { type LocalApi, startLocalApi } from '../../local/local-api.js';
import { closeServer, listenOnLoopback } from '../support/loopback.js';

/**
 * The DashScope key must never leave the Authorization header. A recognizable fake key is the
 * only key the emulator accepts; whole generations run through the local HTTP API, the
 * synthesized workflow and s3rver (a success with a webhook, a partial result, a task DashScope
 * fails, a throttled submit, a rejected key), and then every place the key could end up is read:
 * each log line, the console, every execution's input, output, error, cause and last task state,
 * every API answer, every S3 object, every completion event and every webhook delivery.
 */
const CANARY = `sk-LEAKCANARY-${randomBytes(12).toString('hex')}`;
/** The key, and forms it would take if something encoded it on the way out. */
const NEEDLES = [
  CANARY,
  CANARY.slice('sk-'.length),
  Buffer.from(CANARY).toString('base64'),
  encodeURIComponent(CANARY),
];

let dir: string;
let api: LocalApi;
let receiver: Server;
let receiverUrl: string;
const logLines: string[] = [];
const consoleLines: string[] = [];
const webhookDeliveries: string[] = [];
const apiAnswers: string[] = [];

/** Captures every entry, as a JSON line the way a log shipper would see it. */
const capturingLogger: Logger = Object.fromEntries(
  (['debug', 'info', 'warn', 'error'] as const).map((level) => [
    level,
    (message: string, extra?: Record<string, unknown>) =>
      logLines.push(JSON.stringify({ level, message, ...extra })),
  ]),
) as unknown as Logger;

function leaksIn(text: string): string[] {
  return NEEDLES.filter((needle) => text.includes(needle));
}

async function call(method: string, pathname: string, body?: unknown): Promise<Record<string, any>> {
  const response = await fetch(`${api.url}${pathname}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  apiAnswers.push(`${response.status} ${JSON.stringify([...response.headers])} ${text}`);
  return JSON.parse(text) as Record<string, any>;
}

const prompts: string[] = [];

async function generate(body: Record<string, unknown>): Promise<GenerationView> {
  prompts.push(String(body.prompt));
  const { id } = await call('POST', '/v1/generations', body);
  await api.executions.settled(id);
  return (await call('GET', `/v1/generations/${id}`)) as GenerationView;
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'secret-leak-'));
  receiver = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      webhookDeliveries.push(`${JSON.stringify(request.headers)} ${Buffer.concat(chunks).toString('utf8')}`);
      response.writeHead(204).end();
    });
  });
  receiverUrl = `${await listenOnLoopback(receiver)}/hook?token=receiver-token`;
  for (const method of ['log', 'info', 'warn', 'error', 'debug'] as const) {
    vi.spyOn(console, method).mockImplementation((...args: unknown[]) => {
      consoleLines.push(args.map((arg) => (typeof arg === 'string' ? arg : JSON.stringify(arg))).join(' '));
    });
  }
  api = await startLocalApi({
    port: 0,
    s3Directory: path.join(dir, 's3'),
    dynamoDirectory: path.join(dir, 'dynamodb'),
    emulatorApiKey: CANARY,
    virtualWaits: new AdjustableClock(),
    retryIntervalMs: 5,
    eventsFile: path.join(dir, 'events.jsonl'),
    webhookSecret: `whsec_${randomBytes(32).toString('base64')}`,
    webhookTiming: { attempts: 1, firstBackoffMs: 1, timeoutMs: 2000 },
    logger: capturingLogger,
  });
});

afterAll(async () => {
  vi.restoreAllMocks();
  await api?.close();
  await closeServer(receiver);
  await rm(dir, { recursive: true, force: true });
});

describe('the DashScope API key', () => {
  const views: GenerationView[] = [];

  it('is the one key DashScope (the emulator) accepts, and the generations use it', async () => {
    const emulator = api.emulator!;
    views.push(
      await generate({ prompt: 'a lighthouse at dawn', n: 2, size: '512*512', webhook_url: receiverUrl }),
    );

    emulator.control.planNextTask({ failImages: [1] });
    views.push(await generate({ prompt: 'a partial harbour', n: 2, size: '512*512' }));

    emulator.control.planNextTask({
      fail: { code: 'DataInspectionFailed', message: 'Input data may contain inappropriate content.' },
    });
    views.push(await generate({ prompt: 'a refused prompt', size: '512*512' }));

    emulator.control.injectFault('submit', { status: 429, code: 'Throttling.RateQuota' }, 2);
    views.push(await generate({ prompt: 'a throttled submit', size: '512*512' }));

    emulator.control.injectFault('get', { status: 401, code: 'InvalidApiKey' }, 20);
    views.push(await generate({ prompt: 'a key DashScope stops accepting', size: '512*512' }));

    // Succeeded: the key reached DashScope. The others ended the ways they were scripted to.
    expect(views.map((view) => view.status)).toEqual([
      'succeeded',
      'succeeded',
      'failed',
      'succeeded',
      'failed',
    ]);
    expect(views[1]?.failedImages).toHaveLength(1);
    expect(views.map((view) => view.error?.type)).toEqual([
      undefined,
      undefined,
      'content_policy',
      undefined,
      'auth',
    ]);
    expect(webhookDeliveries).toHaveLength(1);
    expect(logLines.length).toBeGreaterThan(0);
  });

  it('appears in no log line and nothing written to the console', () => {
    expect(logLines.flatMap(leaksIn)).toEqual([]);
    expect(consoleLines.flatMap(leaksIn)).toEqual([]);
  });

  it('appears in no execution input, output, error or cause, and no index record', async () => {
    const { items } = await api.index.list({ limit: 50 });
    expect(items).toHaveLength(views.length);
    for (const record of items) {
      const execution = await api.executions.describe(record.id);
      expect(execution?.input).toBeDefined();
      expect(leaksIn(JSON.stringify({ execution, record }))).toEqual([]);
    }
  });

  it('appears in no API answer', async () => {
    await call('GET', '/v1/generations?limit=50');
    expect(apiAnswers.length).toBeGreaterThan(views.length);
    expect(apiAnswers.flatMap(leaksIn)).toEqual([]);
  });

  it('appears in no S3 object: images, manifests, webhook records', async () => {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const page = await api.s3.client.send(
        new ListObjectsV2Command({ Bucket: api.s3.bucket, ContinuationToken: token }),
      );
      keys.push(...(page.Contents ?? []).map((object) => object.Key ?? ''));
      token = page.NextContinuationToken;
    } while (token);
    expect(keys.some((key) => key.endsWith('manifest.json'))).toBe(true);
    expect(keys.some((key) => key.endsWith('webhook.json'))).toBe(true);
    for (const key of keys) {
      const object = await api.s3.client.send(new GetObjectCommand({ Bucket: api.s3.bucket, Key: key }));
      const bytes = Buffer.from(await object.Body!.transformToByteArray());
      expect(leaksIn(bytes.toString('latin1')), key).toEqual([]);
      expect(leaksIn(JSON.stringify(object.Metadata ?? {})), key).toEqual([]);
    }
  });

  it('appears in no completion event and no webhook delivery', async () => {
    expect(api.events.events.length).toBe(views.length);
    expect(leaksIn(JSON.stringify(api.events.events))).toEqual([]);
    expect(leaksIn(await readFile(path.join(dir, 'events.jsonl'), 'utf8'))).toEqual([]);
    expect(webhookDeliveries.flatMap(leaksIn)).toEqual([]);
  });
});

describe('the logs', () => {
  it('hold no prompt, no webhook URL and no result URL (only ids, statuses and counts)', () => {
    expect(prompts.length).toBeGreaterThan(0);
    const text = logLines.join('\n');
    for (const prompt of prompts) expect(text).not.toContain(prompt);
    expect(text).not.toContain('receiver-token');
    expect(text).not.toContain('/hook');
    expect(text).not.toContain('OSSAccessKeyId');
    expect(text).not.toContain('Signature=');
  });

  it('carry the correlation fields: generation id, execution id, DashScope task and request ids', () => {
    const entries = logLines.map((line) => JSON.parse(line) as Record<string, unknown>);
    const polled = entries.find((entry) => entry.message === 'DashScope task polled');
    expect(polled).toMatchObject({
      generationId: expect.any(String),
      executionId: expect.stringContaining(':execution:'),
      taskId: expect.any(String),
      dashscopeRequestId: expect.any(String),
    });
  });
});
