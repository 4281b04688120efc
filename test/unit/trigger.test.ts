import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { createS3ObjectStore } from '../../functions/shared/aws/s3-object-store.js';
import { systemClock } from '../../functions/shared/clock.js';
import { StorageUnavailableError } from '../../functions/shared/errors.js';
import { DETAIL_TYPE } from '../../functions/shared/events.js';
import { silentLogger } from '../../functions/shared/logger.js';
import { type TriggerDeps, type TriggerReport, triggerFromObject } from '../../functions/trigger/trigger.js';
import { MemoryGenerationIndex } from '../fakes/memory-index.js';

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

/** Step Functions refusing a start, as the SDK names it. */
function throttled(): Error {
  const error = new Error('Rate exceeded');
  error.name = 'ThrottlingException';
  return error;
}

function deps(overrides: Partial<TriggerDeps> = {}) {
  const published: Array<{ detailType: string; detail: Record<string, unknown> }> = [];
  const started: string[] = [];
  return {
    published,
    started,
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
      index: new MemoryGenerationIndex(),
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
    let starts = 0;
    const { deps: triggerDeps } = deps({
      executions: {
        // Line 1 starts; line 3's start is refused.
        start: async (id: string) => {
          starts += 1;
          if (starts === 2) throw throttled();
          return { id } as never;
        },
        describe: async () => undefined,
      },
    });

    await expect(triggerFromObject(event, triggerDeps)).rejects.toThrow('Rate exceeded');

    const report = lastReport();
    expect(report.results.map((r) => [r.line, r.status])).toEqual([
      [1, 'started'],
      [2, 'rejected'],
    ]);
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
    expect(again.results.map((r) => [r.line, r.status])).toEqual([
      [1, 'duplicate'],
      [2, 'rejected'],
      [3, 'duplicate'],
    ]);
    expect(started).toHaveLength(2);
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
