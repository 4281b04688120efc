import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { createS3ObjectStore } from '../../functions/shared/aws/s3-object-store.js';
import { batchLineId, rejectedKeyOf, requestFileBatchId } from '../../functions/shared/batch.js';
import { type Clock, systemClock } from '../../functions/shared/clock.js';
import { StorageUnavailableError } from '../../functions/shared/errors.js';
import { DETAIL_TYPE } from '../../functions/shared/events.js';
import { FINAL_STAGE } from '../../functions/shared/generation-index.js';
import { silentLogger } from '../../functions/shared/logger.js';
import { type TriggerDeps, type TriggerReport, triggerFromObject } from '../../functions/trigger/trigger.js';
import { MemoryBatchIndex, MemoryGenerationIndex } from '../fakes/memory-index.js';

/**
 * The trigger never drops a request file silently: when it cannot finish, the user finds the
 * failure in the file's report, and the invocation fails so Lambda retries it (then the
 * dead-letter queue keeps the event).
 */
const s3 = mockClient(S3Client);
const KEY = 'requests/batch.jsonl';
const event = {
  'detail-type': 'Object Created' as const,
  detail: { bucket: { name: 'images' }, object: { key: KEY, etag: 'etag-1' } },
};
const THREE_LINES = '{"prompt": "one"}\n{"prompt": ""}\n{"prompt": "three"}\n';
/** The batch of this file: its bucket, key and version (the ETag, unversioned). */
const BATCH_ID = requestFileBatchId({ bucket: 'images', key: KEY, version: 'etag-1' });

/** Step Functions refusing a start, as the SDK names it. */
function throttled(): Error {
  const error = new Error('Rate exceeded');
  error.name = 'ThrottlingException';
  return error;
}

function deps(overrides: Partial<TriggerDeps> = {}) {
  const published: Array<{ detailType: string; detail: Record<string, unknown> }> = [];
  const started: string[] = [];
  const index = new MemoryGenerationIndex();
  const batches = new MemoryBatchIndex(index);
  return {
    published,
    started,
    index,
    batches,
    deps: {
      objects: createS3ObjectStore(new S3Client({ region: 'us-east-1' })),
      executions: {
        start: async (id: string) => {
          started.push(id);
          return { startDate: new Date() };
        },
        // Step Functions' answer for a started name: its execution (input and status are not read).
        describe: async (id: string) =>
          started.includes(id)
            ? { name: id, status: 'RUNNING' as const, input: {}, startDate: new Date() }
            : undefined,
      },
      index,
      batches,
      clock: systemClock,
      events: {
        publish: async (detailType: string, detail: Record<string, unknown>) => {
          published.push({ detailType, detail });
        },
      },
      logger: silentLogger,
      ...overrides,
    } satisfies TriggerDeps,
  };
}

/** The report the trigger wrote last. */
function lastReport(): TriggerReport {
  const puts = s3.commandCalls(PutObjectCommand);
  const put = puts[puts.length - 1]?.args[0].input;
  expect(put?.Key).toBe(`${KEY}.result`);
  return JSON.parse(String(put?.Body)) as TriggerReport;
}

beforeEach(() => {
  s3.reset();
  s3.on(GetObjectCommand).resolves({ Body: { transformToString: async () => THREE_LINES } as never });
  s3.on(PutObjectCommand).resolves({});
});

describe('a request file the trigger cannot finish', () => {
  it('is reported with the lines done so far and the failure, and the invocation fails so it is retried', async () => {
    const { deps: triggerDeps } = deps({
      executions: {
        // Line 1 starts; line 3's start is refused.
        start: async (id: string) => {
          if (id === batchLineId(BATCH_ID, 3)) throw throttled();
          return { id } as never;
        },
        describe: async () => undefined,
      },
    });

    await expect(triggerFromObject(event, triggerDeps)).rejects.toThrow('Rate exceeded');

    const report = lastReport();
    expect(report.results.map((r) => [r.line, r.id, r.status])).toEqual([
      [1, batchLineId(BATCH_ID, 1), 'started'],
      [2, undefined, 'rejected'],
    ]);
    // The batch was made before the lines started: the report names it, to follow the retry.
    expect(report.batch).toEqual({ id: BATCH_ID, links: { self: `/v1/batches/${BATCH_ID}` } });
    expect(report.failure).toMatchObject({ name: 'ThrottlingException' });
    expect(report.failure?.message).toContain('Rate exceeded');
    expect(report.failure?.retried).toContain('dead-letter queue');
  });

  it('is reported when the file cannot be read, and fails with StorageUnavailableError', async () => {
    s3.on(GetObjectCommand).rejects(new Error('Service Unavailable'));
    const { deps: triggerDeps, started } = deps();

    await expect(triggerFromObject(event, triggerDeps)).rejects.toBeInstanceOf(StorageUnavailableError);

    expect(started).toEqual([]);
    expect(lastReport()).toMatchObject({ results: [], failure: { name: 'StorageUnavailableError' } });
    // Nothing was read, so no batch was made.
    expect(lastReport().batch).toBeUndefined();
  });

  it('still fails with the original error when S3 refuses the report too', async () => {
    s3.on(GetObjectCommand).rejects(new Error('Service Unavailable'));
    s3.on(PutObjectCommand).rejects(new Error('Access Denied'));
    const { deps: triggerDeps } = deps();

    await expect(triggerFromObject(event, triggerDeps)).rejects.toThrow(/S3 read of requests\/batch.jsonl/);
  });
});

describe('a request file delivered twice', () => {
  it('announces an invalid line with the same eventId both times', async () => {
    const first = deps();
    const second = deps();

    await triggerFromObject(event, first.deps);
    await triggerFromObject(event, second.deps);

    const [a] = first.published.filter((e) => e.detailType === DETAIL_TYPE.rejected);
    const [b] = second.published.filter((e) => e.detailType === DETAIL_TYPE.rejected);
    expect(a?.detail.eventId).toMatch(/^evt_/);
    expect(b?.detail.eventId).toBe(a?.detail.eventId);
  });

  it('reports the lines an earlier delivery started as duplicates, and starts nothing again', async () => {
    // Prepare: the same index and executions, as on AWS; the first delivery's executions still run.
    const { deps: triggerDeps, started } = deps();
    await triggerFromObject(event, triggerDeps);

    // Act
    const again = await triggerFromObject(event, triggerDeps);

    // Assess
    expect(again.results.map((r) => [r.line, r.id, r.status])).toEqual([
      [1, batchLineId(BATCH_ID, 1), 'duplicate'],
      [2, undefined, 'rejected'],
      [3, batchLineId(BATCH_ID, 3), 'duplicate'],
    ]);
    expect([...started].sort()).toEqual([batchLineId(BATCH_ID, 1), batchLineId(BATCH_ID, 3)]);
  });

  it('starts a line whose record exists but whose execution never started', async () => {
    // Prepare: a delivery that stopped between registering line 1 and starting it.
    const { deps: triggerDeps, started } = deps();
    const first = await triggerFromObject(event, {
      ...triggerDeps,
      executions: {
        ...triggerDeps.executions,
        start: async () => {
          throw throttled();
        },
      },
    }).catch(() => undefined);
    expect(first).toBeUndefined();

    // Act
    const again = await triggerFromObject(event, triggerDeps);

    // Assess
    expect(again.results.map((r) => [r.line, r.status])).toEqual([
      [1, 'started'],
      [2, 'rejected'],
      [3, 'started'],
    ]);
    expect(started).toHaveLength(2);
  });

  it('reports a finished file without a failure', async () => {
    const { deps: triggerDeps } = deps();

    await triggerFromObject(event, triggerDeps);

    expect(lastReport().failure).toBeUndefined();
    expect(lastReport().results).toHaveLength(3);
  });
});

describe('a request file is a batch', () => {
  /** A clock the test moves: a redelivery comes later than the first delivery. */
  function movableClock(start: string): Clock & { set(at: string): void } {
    let now = Date.parse(start);
    return {
      now: () => now,
      set: (at: string) => {
        now = Date.parse(at);
      },
    };
  }

  /** Every object the trigger wrote, in order: key and parsed body. */
  function writes(): Array<{ bucket?: string; key?: string; body: unknown }> {
    return s3.commandCalls(PutObjectCommand).map((call) => ({
      bucket: call.args[0].input.Bucket,
      key: call.args[0].input.Key,
      body: JSON.parse(String(call.args[0].input.Body)),
    }));
  }

  it('named after its bucket, key and version, with its lines as generations file-…-<line>', async () => {
    const { deps: triggerDeps, started, index } = deps();

    const report = await triggerFromObject(event, triggerDeps);

    expect(BATCH_ID).toMatch(/^file-[A-Za-z0-9_-]{40}$/);
    expect(report.batch).toEqual({ id: BATCH_ID, links: { self: `/v1/batches/${BATCH_ID}` } });
    expect(lastReport().batch).toEqual(report.batch);
    expect(report.results.map((r) => [r.line, r.id, r.status])).toEqual([
      [1, `${BATCH_ID}-1`, 'started'],
      [2, undefined, 'rejected'],
      [3, `${BATCH_ID}-3`, 'started'],
    ]);
    // Lines start several at a time: in any order, each once.
    expect([...started].sort()).toEqual([`${BATCH_ID}-1`, `${BATCH_ID}-3`]);
    expect(await index.get(`${BATCH_ID}-3`)).toMatchObject({ source: 'request-file', status: 'queued' });
  });

  it('with an invalid line: counts every line, the invalid one rejected and the valid ones waiting', async () => {
    const { deps: triggerDeps, batches } = deps({
      clock: { now: () => Date.parse('2026-03-01T12:00:00.000Z') },
    });

    await triggerFromObject(event, triggerDeps);

    expect(await batches.get(BATCH_ID)).toMatchObject({
      id: BATCH_ID,
      status: 'in_progress',
      source: 'request-file',
      priority: 'batch',
      createdAt: '2026-03-01T12:00:00.000Z',
      file: { bucket: 'images', key: KEY, version: 'etag-1' },
      counts: {
        total: 3,
        rejected: 1,
        waiting: 2,
        running: 0,
        succeeded: 0,
        partial: 0,
        failed: 0,
        canceled: 0,
      },
    });
  });

  it('keeps its rejected lines in batches/<id>/rejected.json, before it reports', async () => {
    const { deps: triggerDeps } = deps();

    await triggerFromObject(event, triggerDeps);

    const written = writes();
    expect(written.map((w) => w.key)).toEqual([rejectedKeyOf(BATCH_ID), `${KEY}.result`]);
    expect(rejectedKeyOf(BATCH_ID)).toBe(`batches/${BATCH_ID}/rejected.json`);
    expect(written[0]).toEqual({
      bucket: 'images',
      key: `batches/${BATCH_ID}/rejected.json`,
      body: {
        lines: [
          { line: 2, error: { type: 'invalid_request', message: expect.stringMatching(/^line 2: prompt/) } },
        ],
      },
    });
  });

  it('writes no rejected.json when every line is valid', async () => {
    s3.on(GetObjectCommand).resolves({
      Body: { transformToString: async () => '{"prompt": "one"}\n{"prompt": "two"}\n' } as never,
    });
    const { deps: triggerDeps, batches } = deps();

    await triggerFromObject(event, triggerDeps);

    expect(writes().map((w) => w.key)).toEqual([`${KEY}.result`]);
    expect((await batches.get(BATCH_ID))?.counts).toMatchObject({ total: 2, rejected: 0, waiting: 2 });
  });

  it('delivered again, finds the same batch: created once, its lines reported duplicate', async () => {
    // Prepare: the same index, batches and executions, as on AWS; the redelivery comes later.
    const clock = movableClock('2026-03-01T12:00:00.000Z');
    const { deps: triggerDeps, batches, started } = deps({ clock });
    const create = vi.spyOn(batches, 'create');
    const first = await triggerFromObject(event, triggerDeps);
    clock.set('2026-03-01T12:05:00.000Z');

    // Act
    const again = await triggerFromObject(event, triggerDeps);

    // Assess: one batch, as the first delivery made it, with its counts unchanged.
    expect(again.batch).toEqual(first.batch);
    expect(again.batch?.id).toBe(BATCH_ID);
    expect(create).toHaveBeenCalledTimes(2);
    const outcomes = await Promise.all(create.mock.results.map((result) => result.value));
    expect(outcomes[0]).toEqual({});
    expect(outcomes[1]).toMatchObject({ existing: { id: BATCH_ID, createdAt: '2026-03-01T12:00:00.000Z' } });
    const listed = await batches.list({ limit: 10 });
    expect(listed.items.map((batch) => batch.id)).toEqual([BATCH_ID]);
    expect(await batches.get(BATCH_ID)).toMatchObject({
      createdAt: '2026-03-01T12:00:00.000Z',
      counts: { total: 3, rejected: 1, waiting: 2 },
    });
    expect(again.results.map((r) => [r.line, r.id, r.status])).toEqual([
      [1, `${BATCH_ID}-1`, 'duplicate'],
      [2, undefined, 'rejected'],
      [3, `${BATCH_ID}-3`, 'duplicate'],
    ]);
    expect(started).toHaveLength(2);
  });

  it('delivered again after the batch completed, still reports its lines duplicate (not canceled)', async () => {
    // Prepare: every line ended and the batch was completed, as its finisher does.
    const { deps: triggerDeps, batches, index, started } = deps();
    await triggerFromObject(event, triggerDeps);
    for (const line of [1, 3]) {
      const record = await index.get(batchLineId(BATCH_ID, line));
      index.seed({ ...(record as NonNullable<typeof record>), status: 'succeeded', stage: FINAL_STAGE });
    }
    const now = new Date().toISOString();
    const claimed = await batches.claimCompletion(BATCH_ID, 'finisher', now, now);
    expect(claimed).toBeDefined();
    const ended = await batches.complete(BATCH_ID, 'finisher', {
      status: 'completed',
      at: now,
      resultsKey: `batches/${BATCH_ID}/results.jsonl`,
      counts: {
        total: 3,
        rejected: 1,
        waiting: 0,
        running: 0,
        succeeded: 2,
        partial: 0,
        failed: 0,
        canceled: 0,
      },
    });
    expect(ended).toBe(true);

    // Act
    const again = await triggerFromObject(event, triggerDeps);

    // Assess
    expect(again.batch?.id).toBe(BATCH_ID);
    expect(again.results.map((r) => [r.line, r.id, r.status])).toEqual([
      [1, `${BATCH_ID}-1`, 'duplicate'],
      [2, undefined, 'rejected'],
      [3, `${BATCH_ID}-3`, 'duplicate'],
    ]);
    expect(started).toHaveLength(2);
  });

  it('a new version of the same key is another batch', async () => {
    const { deps: triggerDeps, batches } = deps();
    await triggerFromObject(event, triggerDeps);

    const next = await triggerFromObject(
      { ...event, detail: { ...event.detail, object: { key: KEY, etag: 'etag-2' } } },
      triggerDeps,
    );

    const nextId = requestFileBatchId({ bucket: 'images', key: KEY, version: 'etag-2' });
    expect(next.batch?.id).toBe(nextId);
    expect(nextId).not.toBe(BATCH_ID);
    expect(next.results.filter((r) => r.status === 'started').map((r) => r.id)).toEqual([
      `${nextId}-1`,
      `${nextId}-3`,
    ]);
    expect((await batches.list({ limit: 10 })).items).toHaveLength(2);
  });
});
