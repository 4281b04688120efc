import { createServer, type IncomingMessage, type Server } from 'node:http';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type NotifyInput, notifyCompletion } from '../../functions/notify/notify.js';
import { createS3ObjectStore } from '../../functions/shared/aws/s3-object-store.js';
import { DETAIL_TYPE, deliveryId } from '../../functions/shared/events.js';
import { silentLogger } from '../../functions/shared/logger.js';
import { closeServer, listenOnLoopback } from '../support/loopback.js';

/**
 * Downstream delivery is at least once: a Notify that Step Functions runs again announces the same
 * outcome again. Both the event and the webhook carry an id derived from the generation and the
 * outcome, so a receiver can drop the repeat.
 */
const s3 = mockClient(S3Client);
let server: Server | undefined;
let hooks: Array<IncomingMessage['headers']>;
let url: string;

beforeEach(async () => {
  s3.reset();
  s3.on(PutObjectCommand).resolves({});
  hooks = [];
  server = createServer((req, res) => {
    hooks.push(req.headers);
    req.resume();
    req.on('end', () => res.writeHead(204).end());
  });
  url = `${await listenOnLoopback(server)}/hook`;
});

afterEach(async () => {
  await closeServer(server);
  server = undefined;
});

/** Runs Notify once for `input`, returning the events it published. */
async function notifyOnce(input: NotifyInput) {
  const published: Array<{ detailType: string; detail: Record<string, unknown> }> = [];
  await notifyCompletion(input, {
    events: { publish: async (detailType, detail) => void published.push({ detailType, detail }) },
    objects: createS3ObjectStore(new S3Client({ region: 'us-east-1' })),
    bucket: 'images',
    logger: silentLogger,
    webhookSecret: async () => 'a-test-secret',
    webhookPolicy: { allowHttp: true, allowPrivateAddresses: true },
    webhookTiming: { attempts: 1, timeoutMs: 5000 },
  });
  return published;
}

const succeeded = (id: string): NotifyInput => ({
  outcome: 'succeeded',
  state: { id, request: { prompt: 'an eagle', webhook_url: url } },
});
const failed = (id: string): NotifyInput => ({
  outcome: 'failed',
  state: { id, request: { prompt: 'an eagle', webhook_url: url }, failure: { Error: 'TaskFailed' } },
});

describe('Notify run twice for the same outcome', () => {
  it('publishes the same detail.eventId both times', async () => {
    const [first] = await notifyOnce(succeeded('gen-1'));
    const [second] = await notifyOnce(succeeded('gen-1'));

    expect(first?.detail.eventId).toBe(deliveryId('evt', 'gen-1', DETAIL_TYPE.succeeded));
    expect(second?.detail.eventId).toBe(first?.detail.eventId);
  });

  it('sends the webhook with the same webhook-id both times', async () => {
    await notifyOnce(succeeded('gen-1'));
    await notifyOnce(succeeded('gen-1'));

    expect(hooks).toHaveLength(2);
    expect(hooks[0]?.['webhook-id']).toBe(deliveryId('msg', 'gen-1', 'generation.succeeded'));
    expect(hooks[1]?.['webhook-id']).toBe(hooks[0]?.['webhook-id']);
  });

  it('records the webhook-id it sent in the delivery record', async () => {
    await notifyOnce(succeeded('gen-1'));

    const record = JSON.parse(String(s3.commandCalls(PutObjectCommand)[0]?.args[0].input.Body));
    expect(record.webhookId).toBe(hooks[0]?.['webhook-id']);
  });
});

describe('ids of different announcements', () => {
  it('differ between generations and between outcomes, for events and webhooks alike', async () => {
    const [a] = await notifyOnce(succeeded('gen-1'));
    const [b] = await notifyOnce(succeeded('gen-2'));
    const [c] = await notifyOnce(failed('gen-1'));

    const eventIds = new Set([a?.detail.eventId, b?.detail.eventId, c?.detail.eventId]);
    expect(eventIds.size).toBe(3);
    expect(new Set(hooks.map((headers) => headers['webhook-id'])).size).toBe(3);
  });
});
