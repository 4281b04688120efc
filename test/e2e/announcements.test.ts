import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AdjustableClock } from '../../functions/shared/clock.js';
import { DETAIL_TYPE, deliveryId } from '../../functions/shared/events.js';
import type { Logger } from '../../functions/shared/logger.js';
import { silentLogger } from '../../functions/shared/logger.js';
import { STATE } from '../../infra/constructs/workflow.js';
import {
  emulatorEndpoint,
  type RunningEmulator,
  startEmulator,
} from '../../local/dashscope-emulator/server.js';
import { ensureTable, type LocalDynamo, startLocalDynamo } from '../../local/dynamodb.js';
import {
  createLocalRunner,
  generationsTableDefinition,
  LOCAL_TABLE,
  type LocalRunner,
} from '../../local/runner.js';
import { type LocalS3, startLocalS3 } from '../../local/s3.js';
import { closeServer, listenOnLoopback } from '../support/loopback.js';

/**
 * Every end is announced once, through the synthesized workflow run by the local engine: an event
 * EventBridge refuses is tried again by Notify, then by the state machine's Retry, then by Notify's
 * last attempt, which dead-letters it (locally: to the error log); the webhook goes out once
 * whatever happens; and an end whose Notify never ran is announced by the reconciler, once.
 */
let dir: string;
let s3: LocalS3;
let dynamo: LocalDynamo;
let emulator: RunningEmulator;
let runner: LocalRunner;
let receiver: Server;
let receiverUrl: string;
let hooks: Array<IncomingMessage['headers']>;
/** The answers of the local "EventBridge", one per call: `false` refuses; empty, it takes. */
let refusals: boolean[];
let refuseAll = false;
let published: Array<{ detailType: string; detail: Record<string, unknown> }>;
let errors: Array<{ message: string; extra?: Record<string, unknown> }>;
/** Task states whose invocation crashes (Lambda.Unknown) without running the function. */
let crash: Set<string>;
let taskErrors: Array<{ state: string; name: string }>;

const logger: Logger = {
  ...silentLogger,
  error: (message, extra) => void errors.push({ message, extra }),
};

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'announcements-'));
  s3 = await startLocalS3({ directory: path.join(dir, 's3') });
  dynamo = await startLocalDynamo();
  const clock = new AdjustableClock();
  emulator = await startEmulator({ clock });
  receiver = createServer((req, res) => {
    hooks.push(req.headers);
    req.resume();
    req.on('end', () => res.writeHead(204).end());
  });
  receiverUrl = await listenOnLoopback(receiver);
  runner = createLocalRunner({
    dashscope: emulatorEndpoint(emulator),
    s3: { client: s3.client, bucket: s3.bucket },
    index: { client: dynamo.client, table: LOCAL_TABLE },
    virtualWaits: clock,
    retryIntervalMs: 5,
    logger,
    webhookSecret: 'an-announcements-test-secret',
    webhookTiming: { attempts: 1, timeoutMs: 5000 },
    events: {
      async publish(detailType, detail) {
        if (refuseAll || refusals.shift() === false) throw new Error('EventBridge refused: InternalFailure');
        published.push({ detailType, detail });
      },
    },
    interceptTask: async (state, invoke) => {
      if (crash.has(state)) {
        throw Object.assign(new Error('Runtime exited with error: signal: killed'), {
          name: 'Lambda.Unknown',
        });
      }
      return invoke();
    },
  });
  await ensureTable(dynamo.client, LOCAL_TABLE, generationsTableDefinition(runner.template));
}, 300_000);

afterAll(async () => {
  await closeServer(receiver);
  await emulator?.close();
  await s3?.close();
  await dynamo?.close();
  await rm(dir, { recursive: true, force: true });
});

beforeEach(() => {
  emulator.control.reset();
  refusals = [];
  refuseAll = false;
  published = [];
  errors = [];
  hooks = [];
  crash = new Set();
  taskErrors = [];
});

const observer = {
  onTaskError: (state: string, error: unknown) =>
    void taskErrors.push({ state, name: (error as Error).name }),
};

const request = () => ({ prompt: 'a heron', size: '512*512', seed: 5, webhook_url: `${receiverUrl}/hook` });
const uniqueId = (prefix: string) => `${prefix}-${Date.now()}-${Math.random().toString(16).slice(2, 8)}`;

describe('an event EventBridge refuses', () => {
  it('goes out once, and the webhook once, when the state machine’s retry of Notify gets through', async () => {
    // Notify's first run: 3 tries refused; the workflow runs it again: the first try refused, then taken.
    refusals = [false, false, false, false];
    const id = uniqueId('retried');

    const outcome = await runner.run(id, request(), observer);

    expect(outcome.status).toBe('SUCCEEDED');
    expect(taskErrors).toEqual([{ state: STATE.notifySucceeded, name: 'EventNotPublishedError' }]);
    expect(published.map((event) => event.detailType)).toEqual([DETAIL_TYPE.succeeded]);
    expect(published[0]?.detail.eventId).toBe(deliveryId('evt', id, DETAIL_TYPE.succeeded));
    expect(hooks).toHaveLength(1);
    expect(errors).toEqual([]);
  });

  it('is dead-lettered by Notify’s last attempt, the webhook sent once and the outcome unchanged', async () => {
    refuseAll = true;
    emulator.control.planNextTask({
      fail: { code: 'DataInspectionFailed', message: 'Inappropriate content.' },
    });
    const id = uniqueId('dead');

    const outcome = await runner.run(id, request(), observer);

    expect(outcome).toMatchObject({ status: 'FAILED', error: 'DashScopeTaskFailed' });
    // The first run and its 3 retries, then the last attempt, which does not fail.
    expect(taskErrors).toEqual(Array(4).fill({ state: STATE.notifyFailed, name: 'EventNotPublishedError' }));
    expect(published).toEqual([]);
    expect(hooks).toHaveLength(1);
    expect(hooks[0]?.['webhook-id']).toBe(deliveryId('msg', id, 'generation.failed'));
    // No queue locally: the dead letter is the error log line, once (the reconciler adds none).
    expect(errors).toHaveLength(1);
    expect(errors[0]?.extra).toMatchObject({
      generationId: id,
      announcement: {
        kind: 'announcement',
        detailType: DETAIL_TYPE.failed,
        eventId: deliveryId('evt', id, DETAIL_TYPE.failed),
      },
    });
  });
});

describe('an end Notify never ran for', () => {
  it('is announced by the reconciler, once: the event and the webhook', async () => {
    // Notify failed crashes (not retried: the crash may have come after a webhook) to the Fail state.
    crash = new Set([STATE.notifyFailed]);
    emulator.control.planNextTask({
      fail: { code: 'DataInspectionFailed', message: 'Inappropriate content.' },
    });
    const id = uniqueId('unannounced');

    const outcome = await runner.run(id, request(), observer);

    expect(outcome.status).toBe('FAILED');
    expect(taskErrors).toEqual([{ state: STATE.notifyFailed, name: 'Lambda.Unknown' }]);
    expect(published.map((event) => [event.detailType, event.detail.id])).toEqual([[DETAIL_TYPE.failed, id]]);
    expect(published[0]?.detail.eventId).toBe(deliveryId('evt', id, DETAIL_TYPE.failed));
    expect(hooks).toHaveLength(1);
  });

  it('is not announced again when Notify ran', async () => {
    emulator.control.planNextTask({
      fail: { code: 'DataInspectionFailed', message: 'Inappropriate content.' },
    });

    const outcome = await runner.run(uniqueId('announced'), request(), observer);

    expect(outcome.status).toBe('FAILED');
    expect(published).toHaveLength(1);
    expect(hooks).toHaveLength(1);
  });
});
