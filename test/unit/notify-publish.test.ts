import { createServer, type IncomingMessage, type Server } from 'node:http';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createNotifyHandler } from '../../functions/notify/handler.js';
import { lastAttemptWorstCaseMs, type NotifyDeps, notifyCompletion } from '../../functions/notify/notify.js';
import { CALL_TIMING, withRetries, worstCaseMs } from '../../functions/notify/retry.js';
import { notifySpec, reconcileSpec } from '../../functions/notify/spec.js';
import { createSqsDeadLetters } from '../../functions/shared/aws/sqs-dead-letters.js';
import { ConfigError } from '../../functions/shared/config.js';
import {
  ANNOUNCEMENT_ERROR,
  AnnouncementLostError,
  DETAIL_TYPE,
  type DeadLetteredAnnouncement,
  deliveryId,
  EVENT_SOURCE,
  EventNotPublishedError,
} from '../../functions/shared/events.js';
import type { Logger } from '../../functions/shared/logger.js';
import type { MetricName, Metrics } from '../../functions/shared/metrics.js';
import type { ObjectStore } from '../../functions/shared/object-store.js';
import { closeServer, listenOnLoopback } from '../support/loopback.js';

/**
 * Every end is announced, once: a publish EventBridge refuses is tried again inside Notify, then
 * by the state machine (Notify fails with EventNotPublishedError before its webhook), then by the
 * last attempt, which leaves the event in the dead-letter queue. Whatever the path, the event goes
 * out (or is dead-lettered) once and the webhook once.
 */
let server: Server | undefined;
let hooks: Array<IncomingMessage['headers']>;
let url: string;

beforeEach(async () => {
  hooks = [];
  server = createServer((req, res) => {
    hooks.push(req.headers);
    req.resume();
    req.on('end', () => res.writeHead(204).end());
  });
  url = `${await listenOnLoopback(server)}/hook?token=secret`;
});

afterEach(async () => {
  await closeServer(server);
  server = undefined;
});

/** EventBridge as a list of answers, one per call: `true` takes the event, `false` refuses it. */
function eventBridge(answers: boolean[] | 'refuses' | 'hangs') {
  const published: Array<{ detailType: string; detail: Record<string, unknown> }> = [];
  let calls = 0;
  return {
    published,
    get calls() {
      return calls;
    },
    publisher: {
      async publish(detailType: string, detail: Record<string, unknown>) {
        calls++;
        if (answers === 'hangs') return new Promise<void>(() => {});
        const ok = answers === 'refuses' ? false : (answers.shift() ?? true);
        if (!ok) throw new Error('EventBridge refused the event: InternalFailure');
        published.push({ detailType, detail });
      },
    },
  };
}

function deadLetterQueue(refuses = false) {
  const letters: DeadLetteredAnnouncement[] = [];
  return {
    letters,
    port: {
      async send(letter: DeadLetteredAnnouncement) {
        if (refuses) throw new Error('SQS is down');
        letters.push(letter);
      },
    },
  };
}

function recordingLogger(): Logger & { lines: Array<{ level: string; message: string; extra?: unknown }> } {
  const lines: Array<{ level: string; message: string; extra?: unknown }> = [];
  const log = (level: string) => (message: string, extra?: unknown) =>
    void lines.push({ level, message, extra });
  return { lines, debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
}

const records: Array<{ key: string; value: unknown }> = [];
const objects: ObjectStore = {
  getText: async () => '',
  putJson: async ({ key }, value) => void records.push({ key, value }),
  putText: async ({ key }, value) => void records.push({ key, value }),
};

function depsWith(
  events: ReturnType<typeof eventBridge>,
  extra: Partial<NotifyDeps> = {},
): NotifyDeps & { logger: ReturnType<typeof recordingLogger> } {
  return {
    events: events.publisher,
    objects,
    bucket: 'images',
    logger: recordingLogger(),
    webhookSecret: async () => 'a-test-secret-of-some-length',
    webhookPolicy: { allowHttp: true, allowPrivateAddresses: true },
    webhookTiming: { attempts: 1, timeoutMs: 5000 },
    callTiming: { firstBackoffMs: 1, timeoutMs: 200 },
    eventBusName: 'default',
    ...extra,
  } as NotifyDeps & { logger: ReturnType<typeof recordingLogger> };
}

const failed = (lastAttempt?: boolean) => ({
  outcome: 'failed' as const,
  ...(lastAttempt ? { lastAttempt } : {}),
  state: {
    id: 'gen-1',
    request: { prompt: 'an eagle', webhook_url: url },
    failure: { Error: 'DashScopeTaskFailed', Cause: 'boom' },
  },
});

/**
 * Notify as the workflow runs it: the state, retried on EventNotPublishedError up to
 * `retries` times, then its last attempt. What each run returned or threw.
 */
async function asTheWorkflowRunsIt(deps: NotifyDeps, retries = 3): Promise<unknown[]> {
  const runs: unknown[] = [];
  for (let run = 0; run <= retries; run++) {
    try {
      runs.push(await notifyCompletion(failed(), deps));
      return runs;
    } catch (error) {
      runs.push(error);
      if (!(error instanceof EventNotPublishedError)) return runs;
    }
  }
  runs.push(await notifyCompletion(failed(true), deps).catch((error: unknown) => error));
  return runs;
}

describe('the publish, inside one Notify', () => {
  it('is tried again when EventBridge refuses it, and goes out once, the webhook after it', async () => {
    const events = eventBridge([false, true]);

    const result = await notifyCompletion(failed(), depsWith(events));

    expect(events.calls).toBe(2);
    expect(events.published).toHaveLength(1);
    expect(events.published[0]?.detail.eventId).toBe(deliveryId('evt', 'gen-1', DETAIL_TYPE.failed));
    expect(hooks).toHaveLength(1);
    expect(result).toMatchObject({ event: 'published', webhook: { delivered: true } });
  });

  it('fails the invocation with EventNotPublishedError after its tries, before any webhook', async () => {
    const events = eventBridge('refuses');
    const deps = depsWith(events);

    const error = await notifyCompletion(failed(), deps).catch((thrown: unknown) => thrown);

    expect(error).toBeInstanceOf(EventNotPublishedError);
    expect((error as Error).name).toBe(ANNOUNCEMENT_ERROR.notPublished);
    expect((error as Error).message).toContain('InternalFailure');
    expect(events.calls).toBe(CALL_TIMING.attempts);
    expect(hooks).toHaveLength(0);
    expect(deps.logger.lines.map((line) => line.message)).toContain(
      'Completion event not published: the workflow tries again',
    );
  });

  it('gives up on a try that gets no answer within its limit', async () => {
    const events = eventBridge('hangs');
    const started = Date.now();

    await expect(
      notifyCompletion(
        failed(),
        depsWith(events, { callTiming: { attempts: 2, firstBackoffMs: 1, timeoutMs: 50 } }),
      ),
    ).rejects.toThrow(/No answer within 50 ms/);

    expect(events.calls).toBe(2);
    expect(Date.now() - started).toBeLessThan(2000);
  });
});

describe('a publish EventBridge keeps refusing, as the workflow runs Notify', () => {
  it('publishes once and sends the webhook once when a retried Notify gets through', async () => {
    // Notify's first run: 3 refusals; the state machine runs it again: taken.
    const events = eventBridge([false, false, false, true]);
    const deadLetters = deadLetterQueue();

    const runs = await asTheWorkflowRunsIt(depsWith(events, { deadLetters: deadLetters.port }));

    expect(runs[0]).toBeInstanceOf(EventNotPublishedError);
    expect(runs[1]).toMatchObject({ event: 'published' });
    expect(runs).toHaveLength(2);
    expect(events.published).toHaveLength(1);
    expect(hooks).toHaveLength(1);
    expect(deadLetters.letters).toEqual([]);
  });

  it('dead-letters the event on the last attempt, with its PutEvents entry, and sends the webhook once', async () => {
    const events = eventBridge('refuses');
    const deadLetters = deadLetterQueue();

    const runs = await asTheWorkflowRunsIt(depsWith(events, { deadLetters: deadLetters.port }));

    expect(runs.slice(0, 4).every((run) => run instanceof EventNotPublishedError)).toBe(true);
    expect(runs[4]).toMatchObject({ event: 'dead-lettered', webhook: { delivered: true } });
    expect(events.published).toEqual([]);
    expect(hooks).toHaveLength(1);
    expect(hooks[0]?.['webhook-id']).toBe(deliveryId('msg', 'gen-1', 'generation.failed'));
    expect(deadLetters.letters).toHaveLength(1);
    const [letter] = deadLetters.letters;
    const eventId = deliveryId('evt', 'gen-1', DETAIL_TYPE.failed);
    expect(letter).toMatchObject({
      kind: 'announcement',
      generationId: 'gen-1',
      eventId,
      detailType: DETAIL_TYPE.failed,
      reason: expect.stringContaining('InternalFailure'),
      entry: { Source: EVENT_SOURCE, DetailType: DETAIL_TYPE.failed, EventBusName: 'default' },
    });
    const detail = JSON.parse(letter?.entry.Detail ?? '{}');
    expect(detail).toMatchObject({
      eventId,
      id: 'gen-1',
      status: 'failed',
      error: { name: 'DashScopeTaskFailed' },
    });
    // The webhook URL, with its token, is in no event, not even a dead one.
    expect(letter?.entry.Detail).not.toContain('token=secret');
  });

  it('publishes on the last attempt when EventBridge takes it then, and dead-letters nothing', async () => {
    const events = eventBridge([...Array(12).fill(false), true]);
    const deadLetters = deadLetterQueue();

    const runs = await asTheWorkflowRunsIt(depsWith(events, { deadLetters: deadLetters.port }));

    expect(runs.at(-1)).toMatchObject({ event: 'published' });
    expect(events.published).toHaveLength(1);
    expect(deadLetters.letters).toEqual([]);
    expect(hooks).toHaveLength(1);
  });

  it('logs the whole announcement and fails with AnnouncementLostError, after the webhook, when the dead-letter queue refuses it too', async () => {
    const events = eventBridge('refuses');
    const deps = depsWith(events, { deadLetters: deadLetterQueue(true).port });

    const error = await notifyCompletion(failed(true), deps).catch((thrown: unknown) => thrown);

    expect(error).toBeInstanceOf(AnnouncementLostError);
    expect((error as Error).name).toBe(ANNOUNCEMENT_ERROR.lost);
    expect(hooks).toHaveLength(1);
    const lost = deps.logger.lines.find((line) => line.level === 'error');
    expect(lost?.message).toBe('Completion event lost: neither published nor dead-lettered');
    expect(lost?.extra).toMatchObject({
      deadLetterReason: expect.stringContaining('SQS is down'),
      announcement: { eventId: deliveryId('evt', 'gen-1', DETAIL_TYPE.failed) },
    });
  });

  it('keeps the dead letter in the error log where there is no queue (locally)', async () => {
    const deps = depsWith(eventBridge('refuses'));

    const result = await notifyCompletion(failed(true), deps);

    expect(result.event).toBe('dead-lettered');
    expect(deps.logger.lines.find((line) => line.level === 'error')?.extra).toMatchObject({
      generationId: 'gen-1',
      announcement: { kind: 'announcement', detailType: DETAIL_TYPE.failed },
    });
  });
});

describe('the outcome metric', () => {
  function recordingMetrics(): Metrics & { names: MetricName[] } {
    const names: MetricName[] = [];
    return { names, add: (name) => void names.push(name) };
  }

  it('counts a generation once, by the run that ends it, not by one the workflow runs again', async () => {
    const metrics = recordingMetrics();
    const events = eventBridge([false, false, false, true]);
    const handler = createNotifyHandler({ ...depsWith(events), metrics });
    const event = { ...failed(), executionId: 'arn:aws:states:x:1:execution:sm:gen-1' };

    await expect(handler(event)).rejects.toBeInstanceOf(EventNotPublishedError);
    expect(metrics.names).toEqual([]);
    await handler(event);

    expect(metrics.names).toEqual(['Outcomes']);
    expect(hooks).toHaveLength(1);
  });
});

describe('the time a last attempt may take', () => {
  it('fits Notify’s function timeout (2 minutes), with room for the index, the release and the secret', () => {
    expect(worstCaseMs(CALL_TIMING)).toBe(15_750);
    expect(lastAttemptWorstCaseMs()).toBe(2 * 15_750 + 65_000);
    expect(lastAttemptWorstCaseMs()).toBeLessThanOrEqual(120_000 - 15_000);
  });

  it('retries with backoff between tries, and throws the last error', async () => {
    const waits: number[] = [];
    let calls = 0;
    const error = await withRetries(
      async () => {
        calls++;
        throw new Error(`no ${calls}`);
      },
      { attempts: 3, firstBackoffMs: 100, timeoutMs: 1000 },
      async (ms) => void waits.push(ms),
    ).catch((thrown: unknown) => thrown);

    expect((error as Error).message).toBe('no 3');
    expect(waits).toHaveLength(2);
    expect(waits[0]).toBeLessThanOrEqual(100);
    expect(waits[1]).toBeLessThanOrEqual(200);
  });
});

describe('the SQS dead-letter queue adapter', () => {
  const sqs = mockClient(SQSClient);
  afterEach(() => sqs.reset());

  it('sends the announcement as the body, its kind and ids as attributes', async () => {
    sqs.on(SendMessageCommand).resolves({ MessageId: 'm-1' });
    const url = 'https://sqs.eu-west-1.amazonaws.com/123456789012/dead-letters';
    const letter: DeadLetteredAnnouncement = {
      kind: 'announcement',
      generationId: 'gen-1',
      eventId: 'evt_1',
      detailType: DETAIL_TYPE.failed,
      reason: 'refused',
      at: '2026-01-01T00:00:00.000Z',
      entry: { Source: EVENT_SOURCE, DetailType: DETAIL_TYPE.failed, Detail: '{}' },
    };

    await createSqsDeadLetters(new SQSClient({ region: 'eu-west-1' }), url).send(letter);

    const input = sqs.commandCalls(SendMessageCommand)[0]?.args[0].input;
    expect(input?.QueueUrl).toBe(url);
    expect(JSON.parse(String(input?.MessageBody))).toEqual(letter);
    expect(input?.MessageAttributes).toEqual({
      kind: { DataType: 'String', StringValue: 'announcement' },
      generationId: { DataType: 'String', StringValue: 'gen-1' },
      eventId: { DataType: 'String', StringValue: 'evt_1' },
    });
  });

  it('is named by DEAD_LETTER_QUEUE_URL, an https URL; unset, none', () => {
    const url = 'https://sqs.eu-west-1.amazonaws.com/123456789012/dead-letters';
    const env = { BUCKET_NAME: 'images' };
    const deadLetterQueueUrl = (more: Record<string, string>) =>
      notifySpec.parse({ ...env, ...more }).DEAD_LETTER_QUEUE_URL;
    expect(deadLetterQueueUrl({ DEAD_LETTER_QUEUE_URL: url })).toBe(url);
    expect(deadLetterQueueUrl({})).toBeUndefined();
    expect(deadLetterQueueUrl({ DEAD_LETTER_QUEUE_URL: '' })).toBeUndefined();
    expect(() => deadLetterQueueUrl({ DEAD_LETTER_QUEUE_URL: 'not a url' })).toThrow(ConfigError);
    expect(() => deadLetterQueueUrl({ DEAD_LETTER_QUEUE_URL: 'not a url' })).toThrow(/DEAD_LETTER_QUEUE_URL/);
    // The reconciler reads the same variable the same way.
    const reconcile = {
      ...env,
      GENERATIONS_TABLE: 'generations',
      STATE_MACHINE_ARN: 'arn:aws:states:eu-west-1:123456789012:stateMachine:sd35',
    };
    expect(reconcileSpec.parse({ ...reconcile, DEAD_LETTER_QUEUE_URL: url }).DEAD_LETTER_QUEUE_URL).toBe(url);
  });
});
