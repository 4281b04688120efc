import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CopyObjectCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createS3ObjectStore } from '../../functions/shared/aws/s3-object-store.js';
import { rejectedKeyOf, requestFileBatchId } from '../../functions/shared/batch.js';
import { systemClock } from '../../functions/shared/clock.js';
import type { Logger } from '../../functions/shared/logger.js';
import { createTriggerHandler } from '../../functions/trigger/handler.js';
import type { ObjectCreatedEvent, TriggerReport } from '../../functions/trigger/trigger.js';
import { createLocalEventSink } from '../../local/event-sink.js';
import { type RequestFileWatch, watchRequestFiles } from '../../local/request-file-watch.js';
import { type LocalS3, startLocalS3 } from '../../local/s3.js';
import { FakeExecutionService } from '../api/fake-executions.js';
import { MemoryBatchIndex, MemoryGenerationIndex } from '../fakes/memory-index.js';
import { waitFor } from '../support/wait-for.js';

/**
 * The local stand-in for "S3 → EventBridge → trigger": a request file stored in s3rver under
 * requests/, however it was stored, reaches the trigger once as EventBridge's "Object Created"
 * event; its report and other keys reach nothing.
 */
let s3: LocalS3;
let dir: string;
/** Watches a test opened; closed after it (closing twice is harmless). */
const watches: RequestFileWatch[] = [];

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'request-file-watch-test-'));
  s3 = await startLocalS3({ directory: dir });
});

afterEach(async () => {
  await Promise.all(watches.splice(0).map((watch) => watch.close()));
});

afterAll(async () => {
  await s3?.close();
  await rm(dir, { recursive: true, force: true });
});

interface LogEntry {
  level: keyof Logger;
  message: string;
  extra?: Record<string, unknown>;
}

function recordingLogger(): { logger: Logger; entries: LogEntry[] } {
  const entries: LogEntry[] = [];
  const at = (level: keyof Logger) => (message: string, extra?: Record<string, unknown>) =>
    void entries.push({ level, message, extra });
  return { entries, logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') } };
}

/** A watch whose trigger records each event and then does what `behaviour` says. */
function watch(behaviour: (event: ObjectCreatedEvent) => Promise<unknown> = async () => undefined) {
  const events: ObjectCreatedEvent[] = [];
  const { logger, entries } = recordingLogger();
  const opened = watchRequestFiles({
    s3,
    logger,
    trigger: (event) => {
      events.push(event);
      return behaviour(event);
    },
  });
  watches.push(opened);
  return { watch: opened, events, logs: entries };
}

async function put(key: string, body: string): Promise<string> {
  const result = await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: body }));
  return (result.ETag ?? '').replace(/"/g, '');
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve = () => {};
  const promise = new Promise<void>((done) => {
    resolve = done;
  });
  return { promise, resolve };
}

/**
 * Gives deliveries that should not come a chance to come (s3rver and the watch are in-process):
 * only for what must not happen; what must happen is waited for with {@link waitFor}.
 */
const settle = () => new Promise((resolve) => setTimeout(resolve, 50));

describe('watchRequestFiles', () => {
  it('hands a request file PUT under requests/ to the trigger once, as EventBridge\'s "Object Created" event', async () => {
    // Prepare
    const { watch: opened, events } = watch();

    // Act
    const etag = await put('requests/a.jsonl', '{"prompt":"a fox"}\n');
    await opened.close();

    // Assess
    expect(etag).toMatch(/^[0-9a-f]{32}$/);
    expect(events).toEqual([
      {
        'detail-type': 'Object Created',
        detail: { bucket: { name: s3.bucket }, object: { key: 'requests/a.jsonl', etag } },
      },
    ]);
  });

  it('calls nothing for the report, for keys outside requests/ or with another extension', async () => {
    // Prepare
    const { watch: opened, events } = watch();

    // Act
    await put('requests/a.jsonl.result', '{}');
    await put('other/x.jsonl', '{"prompt":"a fox"}\n');
    await put('requests/notes.txt', 'hello');
    // A request file last, so the watch is shown to be live while the others were stored.
    await put('requests/b.json', '{"prompt":"a fox"}');
    await opened.close();

    // Assess
    expect(events.map((event) => event.detail.object.key)).toEqual(['requests/b.json']);
  });

  it('triggers once for a multipart upload under requests/ (CompleteMultipartUpload)', async () => {
    // Prepare: a body over the 5 MiB part size, so Upload sends two parts and completes them.
    const { watch: opened, events } = watch();
    const line = `${JSON.stringify({ prompt: 'a lighthouse at dusk' })}\n`;
    const body = line.repeat(Math.ceil((5 * 1024 * 1024 + 1) / line.length));
    let parts = 0;
    const upload = new Upload({
      client: s3.client,
      params: { Bucket: s3.bucket, Key: 'requests/big.jsonl', Body: Buffer.from(body) },
      partSize: 5 * 1024 * 1024,
      queueSize: 1,
    });
    upload.on('httpUploadProgress', (progress) => {
      parts = Math.max(parts, progress.part ?? 0);
    });

    // Act
    const result = await upload.done();
    await opened.close();

    // Assess
    expect(parts).toBe(2);
    expect(events).toEqual([
      {
        'detail-type': 'Object Created',
        detail: {
          bucket: { name: s3.bucket },
          object: { key: 'requests/big.jsonl', etag: (result.ETag ?? '').replace(/"/g, '') },
        },
      },
    ]);
  });

  it("triggers once for an object copied into requests/, with its ETag (s3rver's copy event has none)", async () => {
    // Prepare
    const { watch: opened, events } = watch();
    const sourceEtag = await put('drafts/c.jsonl', '{"prompt":"a copied fox"}\n');

    // Act
    await s3.client.send(
      new CopyObjectCommand({
        Bucket: s3.bucket,
        Key: 'requests/c.jsonl',
        CopySource: `${s3.bucket}/drafts/c.jsonl`,
      }),
    );
    await opened.close();

    // Assess
    expect(events.map((event) => event.detail.object)).toEqual([
      { key: 'requests/c.jsonl', etag: sourceEtag },
    ]);
  });

  it('logs a trigger that throws, and the next request file still runs', async () => {
    // Prepare
    const {
      watch: opened,
      events,
      logs,
    } = watch(async (event) => {
      if (event.detail.object.key === 'requests/bad.jsonl') throw new Error('the trigger broke');
    });

    // Act
    const badEtag = await put('requests/bad.jsonl', 'x');
    await put('requests/bad.jsonl', 'y');
    await put('requests/good.jsonl', 'z');
    await opened.close();

    // Assess
    expect(events.map((event) => event.detail.object.key)).toEqual([
      'requests/bad.jsonl',
      'requests/bad.jsonl',
      'requests/good.jsonl',
    ]);
    const errors = logs.filter((entry) => entry.level === 'error');
    expect(errors).toHaveLength(2);
    expect(errors[0]).toEqual({
      level: 'error',
      message: 'Request file trigger failed',
      extra: { key: 'requests/bad.jsonl', etag: badEtag, reason: 'Error: the trigger broke' },
    });
  });

  it('runs the deliveries of one key one at a time, in the order the objects were stored', async () => {
    // Prepare: the first delivery holds until released.
    const release = deferred();
    const running: string[] = [];
    const log: string[] = [];
    const { watch: opened } = watch(async (event) => {
      const etag = event.detail.object.etag ?? '';
      running.push(etag);
      log.push(`start ${etag} with ${running.length} running`);
      if (log.length === 1) await release.promise;
      running.splice(running.indexOf(etag), 1);
      log.push(`end ${etag}`);
    });

    // Act
    const first = await put('requests/same.jsonl', 'first');
    const second = await put('requests/same.jsonl', 'second');
    const third = await put('requests/same.jsonl', 'third');
    await waitFor(() => log.length > 0, { what: 'the first delivery to start', timeoutMs: 60_000 });
    await settle();
    const whileHeld = [...log];
    release.resolve();
    await opened.close();

    // Assess
    expect(whileHeld).toEqual([`start ${first} with 1 running`]);
    expect(log).toEqual([
      `start ${first} with 1 running`,
      `end ${first}`,
      `start ${second} with 1 running`,
      `end ${second}`,
      `start ${third} with 1 running`,
      `end ${third}`,
    ]);
  });

  it('close() stops watching and waits for the delivery in flight', async () => {
    // Prepare: a delivery that holds until released.
    const release = deferred();
    let finished = false;
    const { watch: opened, events } = watch(async () => {
      await release.promise;
      finished = true;
    });
    await put('requests/slow.jsonl', 'slow');
    await waitFor(() => events.length > 0, { what: 'the delivery of slow.jsonl', timeoutMs: 60_000 });
    expect(events).toHaveLength(1);

    // Act
    let closed = false;
    const closing = opened.close().then(() => {
      closed = true;
    });
    await put('requests/after-close.jsonl', 'late');
    await settle();
    const closedWhileHeld = closed;
    release.resolve();
    await closing;

    // Assess
    expect(closedWhileHeld).toBe(false);
    expect(finished).toBe(true);
    expect(events.map((event) => event.detail.object.key)).toEqual(['requests/slow.jsonl']);
  });

  it("with the trigger Lambda's code: a PUT file's valid lines are started and its report is written", async () => {
    // Prepare: the deps `dropRequestFile` gives the trigger, with a fake execution service.
    const executions = new FakeExecutionService(systemClock);
    const index = new MemoryGenerationIndex();
    const events = createLocalEventSink();
    const { logger, entries } = recordingLogger();
    const trigger = createTriggerHandler({
      objects: createS3ObjectStore(s3.client),
      executions,
      index,
      batches: new MemoryBatchIndex(index),
      clock: systemClock,
      events,
      logger,
    });
    const opened = watchRequestFiles({ s3, trigger, logger });
    watches.push(opened);
    const lines = [
      { prompt: 'a red fox in the snow', size: '512*512' },
      { prompt: '' },
      { prompt: 'a bowl of ramen', n: 2, size: '640*512' },
    ];

    // Act
    const etag = await put('requests/batch.jsonl', lines.map((line) => JSON.stringify(line)).join('\n'));
    await opened.close();

    // Assess: two executions started, the invalid line reported and announced, the report written
    // (and not taken for a request file itself: nothing was started twice).
    const object = await s3.client.send(
      new GetObjectCommand({ Bucket: s3.bucket, Key: 'requests/batch.jsonl.result' }),
    );
    const report = JSON.parse(await (object.Body?.transformToString() ?? '')) as TriggerReport;
    expect(report.source).toEqual({ bucket: s3.bucket, key: 'requests/batch.jsonl', version: etag });
    const batchId = requestFileBatchId(report.source);
    expect(report.batch).toEqual({ id: batchId, links: { self: `/v1/batches/${batchId}` } });
    expect(report.results.map((result) => [result.line, result.id, result.status])).toEqual([
      [1, `${batchId}-1`, 'started'],
      [2, undefined, 'rejected'],
      [3, `${batchId}-3`, 'started'],
    ]);
    // The rejected line is kept for the batch's results (and batches/ is no request file).
    const rejected = await s3.client.send(
      new GetObjectCommand({ Bucket: s3.bucket, Key: rejectedKeyOf(batchId) }),
    );
    expect(JSON.parse(await (rejected.Body?.transformToString() ?? ''))).toMatchObject({
      lines: [{ line: 2, error: { type: 'invalid_request' } }],
    });
    // The lines of a batch start several at a time, so in any order: each once, with its own request.
    const startedWith = Object.fromEntries(
      executions.calls.start.map((call) => [call.name, call.input.prompt]),
    );
    expect(executions.calls.start).toHaveLength(2);
    expect(startedWith).toEqual({
      [`${batchId}-1`]: 'a red fox in the snow',
      [`${batchId}-3`]: 'a bowl of ramen',
    });
    expect(events.events.map((event) => event['detail-type'])).toEqual(['Generation Request Rejected']);
    expect(entries.filter((entry) => entry.level === 'error')).toEqual([]);
  });
});
