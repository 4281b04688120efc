import { createHmac } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { batchLineId, rejectedKeyOf, requestFileBatchId } from '../../functions/shared/batch.js';
import { AdjustableClock } from '../../functions/shared/clock.js';
import { silentLogger } from '../../functions/shared/logger.js';
import { type LocalPipeline, startLocalPipeline } from '../../local/pipeline.js';
import { dropRequestFile as drop } from '../../local/request-file-drop.js';
import { closeServer, listenOnLoopback } from '../support/loopback.js';

/**
 * Events in and out, locally: a JSONL request file goes through the S3 trigger's code, every
 * valid line runs through the synthesized workflow, completion events land in the local sink,
 * and webhooks go over real HTTP to local receivers.
 */
const SECRET = `whsec_${Buffer.from('events-e2e-secret-32-bytes-long!').toString('base64')}`;
let dir: string;
let pipeline: LocalPipeline;
let receiverServer: Server;
let receiverUrl: string;
const deliveries: Array<{ headers: IncomingMessage['headers']; body: string }> = [];

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'events-e2e-'));
  pipeline = await startLocalPipeline({
    s3Directory: path.join(dir, 's3'),
    dynamoDirectory: path.join(dir, 'dynamodb'),
    virtualWaits: new AdjustableClock(),
    retryIntervalMs: 5,
    webhookSecret: SECRET,
    webhookTiming: { attempts: 3, firstBackoffMs: 5, timeoutMs: 2000 },
  });
  receiverServer = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => {
      body += chunk;
    });
    req.on('end', () => {
      if (req.url?.startsWith('/dead')) return void res.writeHead(500).end();
      deliveries.push({ headers: req.headers, body });
      res.writeHead(204).end();
    });
  });
  receiverUrl = await listenOnLoopback(receiverServer);
});

afterAll(async () => {
  await closeServer(receiverServer);
  await pipeline?.close();
  await rm(dir, { recursive: true, force: true });
});

/** Verifies a delivery from the Standard Webhooks specification, independently of the signer. */
function signatureVerifies(delivery: { headers: IncomingMessage['headers']; body: string }): boolean {
  const content = `${delivery.headers['webhook-id']}.${delivery.headers['webhook-timestamp']}.${delivery.body}`;
  const expected = createHmac('sha256', Buffer.from(SECRET.slice('whsec_'.length), 'base64'))
    .update(content)
    .digest('base64');
  return String(delivery.headers['webhook-signature']).split(' ').includes(`v1,${expected}`);
}

function dropRequestFile(key: string, lines: unknown[]) {
  const body = lines.map((line) => (typeof line === 'string' ? line : JSON.stringify(line))).join('\n');
  return drop(
    {
      s3: pipeline.s3.client,
      bucket: pipeline.s3.bucket,
      executions: pipeline.executions,
      index: pipeline.index,
      batches: pipeline.batches,
      clock: pipeline.clock,
      events: pipeline.events,
      logger: silentLogger,
    },
    key,
    body,
  );
}

async function keys(prefix: string): Promise<string[]> {
  const listed = await pipeline.s3.client.send(
    new ListObjectsV2Command({ Bucket: pipeline.s3.bucket, Prefix: prefix }),
  );
  return (listed.Contents ?? []).map((o) => o.Key ?? '');
}

describe('event-triggered generation, locally', () => {
  it('runs a JSONL of 5 requests (one invalid): 4 generations, 1 line-numbered error, 4 events, 4 verified webhooks', async () => {
    const hook = `${receiverUrl}/hook?token=do-not-leak`;
    const lines = [
      { prompt: 'a red fox in the snow', size: '512*512', webhook_url: hook },
      { prompt: 'a lighthouse at dusk', n: 2, size: '512*512', webhook_url: hook },
      { prompt: 'missing everything', n: 7, size: '100*100', webhook_url: hook },
      { prompt: 'a bowl of ramen', size: '640*512', webhook_url: hook },
      {
        prompt: 'a sailing boat',
        model: 'stable-diffusion-3.5-large-turbo',
        size: '512*512',
        webhook_url: hook,
      },
    ];
    const before = pipeline.events.events.length;

    const { report } = await dropRequestFile('requests/five.jsonl', lines);
    const started = report.results.filter((r) => r.status === 'started');
    await Promise.all(started.map((r) => pipeline.executions.settled(r.id ?? '')));

    expect(started.map((r) => r.line)).toEqual([1, 2, 4, 5]);
    // The file is one batch, named after its bucket, key and version; line N is its generation `<batch>-N`.
    const batchId = requestFileBatchId(report.source);
    expect(report.batch).toEqual({ id: batchId, links: { self: `/v1/batches/${batchId}` } });
    expect(started.map((r) => r.id)).toEqual([1, 2, 4, 5].map((line) => batchLineId(batchId, line)));
    const rejected = report.results.filter((r) => r.status === 'rejected');
    expect(rejected).toEqual([
      {
        line: 3,
        status: 'rejected',
        error: expect.objectContaining({
          message:
            'line 3: size: width and height must each be one of 512, 640, 768, 896, 1024; n: must be at most 4',
        }),
      },
    ]);
    for (const { id } of started) {
      expect((await pipeline.executions.describe(id ?? ''))?.status).toBe('SUCCEEDED');
      expect((await keys(`generations/${id}/`)).filter((k) => k.endsWith('.png')).length).toBeGreaterThan(0);
    }
    const events = pipeline.events.events.slice(before);
    expect(events.filter((e) => e['detail-type'] === 'Generation Succeeded')).toHaveLength(4);
    expect(events.filter((e) => e['detail-type'] === 'Generation Request Rejected')).toHaveLength(1);
    expect(deliveries).toHaveLength(4);
    expect(deliveries.every(signatureVerifies)).toBe(true);
    expect(JSON.stringify(events)).not.toContain('do-not-leak');
    const report3 = await pipeline.s3.client.send(
      new GetObjectCommand({ Bucket: pipeline.s3.bucket, Key: 'requests/five.jsonl.result' }),
    );
    expect(JSON.parse((await report3.Body?.transformToString()) ?? '{}').results).toHaveLength(5);
    // The rejected line is kept for the batch's results, and the batch counts every line.
    const rejectedFile = await pipeline.s3.client.send(
      new GetObjectCommand({ Bucket: pipeline.s3.bucket, Key: rejectedKeyOf(batchId) }),
    );
    expect(JSON.parse((await rejectedFile.Body?.transformToString()) ?? '{}')).toEqual({
      lines: [
        { line: 3, error: { type: 'invalid_request', message: expect.stringMatching(/^line 3: size/) } },
      ],
    });
    expect(await pipeline.batches.get(batchId)).toMatchObject({
      source: 'request-file',
      counts: { total: 5, rejected: 1, waiting: 0, running: 0, succeeded: 4 },
    });
  });

  it('starts nothing twice when the same S3 event is delivered again', async () => {
    const { report, redeliver } = await dropRequestFile('requests/once.json', [
      { prompt: 'only once', size: '512*512' },
    ]);
    await pipeline.executions.settled(report.results[0]?.id ?? '');

    const again = await redeliver();

    const batchId = requestFileBatchId(report.source);
    expect(report.results).toEqual([{ line: 1, id: batchLineId(batchId, 1), status: 'started' }]);
    expect(again.batch).toEqual(report.batch);
    expect(again.results).toEqual([{ line: 1, id: batchLineId(batchId, 1), status: 'duplicate' }]);
  });

  it('leaves a generation succeeded when its webhook keeps failing, and records the failed delivery', async () => {
    const { report } = await dropRequestFile('requests/dead.json', [
      { prompt: 'nobody listens', size: '512*512', webhook_url: `${receiverUrl}/dead` },
    ]);
    const id = report.results[0]?.id ?? '';
    await pipeline.executions.settled(id);

    expect((await pipeline.executions.describe(id))?.status).toBe('SUCCEEDED');
    const record = await pipeline.s3.client.send(
      new GetObjectCommand({ Bucket: pipeline.s3.bucket, Key: `generations/${id}/webhook.json` }),
    );
    const delivery = JSON.parse((await record.Body?.transformToString()) ?? '{}');
    expect(delivery).toMatchObject({ delivered: false, type: 'generation.succeeded' });
    expect(delivery.attempts.map((a: { status: number }) => a.status)).toEqual([500, 500, 500]);
  });

  it('announces a failed generation with its error type and message', async () => {
    pipeline.emulator?.control.planNextTask({
      fail: { code: 'InternalError.Algo', message: 'Algorithm failed.' },
    });
    const before = pipeline.events.events.length;
    const { report } = await dropRequestFile('requests/fails.json', [
      { prompt: 'this one fails', size: '512*512' },
    ]);
    await pipeline.executions.settled(report.results[0]?.id ?? '');

    const failed = pipeline.events.events.slice(before).find((e) => e['detail-type'] === 'Generation Failed');

    expect(failed?.detail).toMatchObject({
      id: report.results[0]?.id,
      status: 'failed',
      error: { name: 'DashScopeTaskFailed', type: 'upstream_error', upstreamCode: 'InternalError.Algo' },
    });
  });
});
