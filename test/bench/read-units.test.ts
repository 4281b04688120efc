import { describe, expect, it } from 'vitest';
import { ALL_IN_ASSUMPTIONS, batchGetReadUnits } from '../../bench/poll-sim/all-in.js';
import { getBatch } from '../../functions/api/batches.js';
import { createGeneration, getGeneration, listGenerations } from '../../functions/api/generations.js';
import { listQuerySchema } from '../../functions/api/schemas.js';
import type { AdmissionSettings } from '../../functions/shared/admission.js';
import { createDynamoAdmissionQueue } from '../../functions/shared/aws/dynamodb-admission.js';
import { createDynamoBatchIndex } from '../../functions/shared/aws/dynamodb-batches.js';
import { createDynamoGenerationIndex } from '../../functions/shared/aws/dynamodb-index.js';
import { batchLineId, newBatchId } from '../../functions/shared/batch.js';
import { generationRequestSchema } from '../../functions/shared/generation-request.js';
import { taskUpdate } from '../../functions/shared/index-updates.js';
import { silentLogger } from '../../functions/shared/logger.js';
import { FakeExecutionService } from '../api/fake-executions.js';
import { fakePresign, taskState } from '../api/fixtures.js';
import { useLocalTables } from '../support/local-tables.js';
import { readUnitsOf } from '../support/read-units.js';

/**
 * The read units the cost model charges the API (bench/poll-sim/all-in.ts) against what DynamoDB
 * reports for the same reads, on dynalite in the table the stack declares: a GET of a waiting
 * generation, of an admitted one, and a list page of waiting ones with their places.
 */
const tables = useLocalTables('read-units');
const T0 = Date.UTC(2026, 10, 30, 12, 0, 0);
const SETTINGS: AdmissionSettings = {
  accounts: [{ name: 'default', depth: 2, submitsPerSecond: 2 }],
  batchEvery: 4,
  maxQueueSeconds: 604_800,
};
/** The benchmark's request (bench/poll-sim/workloads.ts). */
const REQUEST = generationRequestSchema.parse({
  prompt: 'Eagle flying freely in the blue sky and white clouds',
});
/** A Step Functions task token is an opaque string of several hundred characters: 1,024 here, to be safe. */
const TOKEN = 't'.repeat(1024);

/** `waiting` generations created through the API and queued as Admit queues them. */
async function apiWith(waiting: number) {
  const table = await tables.fresh();
  const queue = createDynamoAdmissionQueue(tables.client(), table);
  const index = createDynamoGenerationIndex(tables.client(), table);
  let now = T0;
  const clock = { now: () => now };
  const deps = {
    executions: new FakeExecutionService(clock),
    index,
    presign: fakePresign,
    clock,
    logger: silentLogger,
    admission: { queue, settings: SETTINGS },
  };
  const ids: string[] = [];
  for (let i = 0; i < waiting; i++) {
    now += 1000;
    const { id } = await createGeneration(REQUEST, {}, deps);
    await queue.enqueue({ id, lane: 'interactive', enqueuedAt: now, expectedRunSeconds: 20, token: TOKEN });
    ids.push(id);
  }
  return { deps, ids, index };
}

describe('the read units of the API, as the cost model counts them', () => {
  it('reads a waiting generation for rruPerQueuedGet, an admitted one for rruPerGet', async () => {
    // Prepare
    const { deps, ids, index } = await apiWith(2);
    const [waiting, admitted] = ids as [string, string];
    const record = await index.get(admitted);
    await index.advance(
      taskUpdate(
        { id: admitted, request: record?.request },
        taskState({ status: 'running' }),
        String(record?.createdAt),
      ),
    );

    // The dispatcher's state as it stands under a backlog: each account's pace beside the runners.
    await deps.admission.queue.writeState({
      interactiveStreak: 1,
      runnersFreeAt: { default: T0 + 40_000 },
      rounds: { interactive: { clock: 12, width: 1, lines: 1 }, batch: { clock: 40, width: 3, lines: 2 } },
      pace: { default: { freed: 31.7, overMs: 702_345.25, fullSince: T0 + 1000 } },
    });

    // Act
    const queued = await readUnitsOf(tables.client(), () => getGeneration(waiting, deps));
    const running = await readUnitsOf(tables.client(), () => getGeneration(admitted, deps));

    // Assess
    expect(queued.result?.queue).toBeDefined();
    expect(running.result).toMatchObject({ status: 'running' });
    expect(running.result?.queue).toBeUndefined();
    expect(queued.units).toBe(ALL_IN_ASSUMPTIONS.rruPerQueuedGet);
    expect(running.units).toBe(ALL_IN_ASSUMPTIONS.rruPerGet);
  });

  it('reads a full list page of waiting generations, with their places, within the model’s units', async () => {
    // Prepare
    const size = ALL_IN_ASSUMPTIONS.apiListPageSize;
    const { deps } = await apiWith(size + 5);

    // Act
    const page = await readUnitsOf(tables.client(), () =>
      listGenerations({ status: 'queued', limit: size }, deps),
    );

    // Assess: what the model charges a page holds what DynamoDB reported, within 20 %.
    const model = size * ALL_IN_ASSUMPTIONS.rruPerListedGeneration + ALL_IN_ASSUMPTIONS.rruPerListPage;
    expect(page.result.data).toHaveLength(size);
    expect(page.result.data.every((view) => view.queue !== undefined)).toBe(true);
    expect(page.units).toBeLessThanOrEqual(model);
    expect(page.units).toBeGreaterThan(model * 0.8);
  }, 60_000);

  it('reads a running batch for what batchGetReadUnits charges: its item, six COUNT queries that grow with it, the counters', async () => {
    // Prepare: a 1,200-line batch, 300 of its lines running.
    const { deps } = await apiWith(0);
    const table = await tables.fresh();
    const index = createDynamoGenerationIndex(tables.client(), table);
    const batches = createDynamoBatchIndex(tables.client(), table);
    const queue = createDynamoAdmissionQueue(tables.client(), table);
    const batchId = newBatchId(T0);
    const lines = 1200;
    const running = 300;
    const createdAt = new Date(T0).toISOString();
    await batches.create({
      id: batchId,
      createdAt,
      source: 'api',
      priority: 'batch',
      total: lines,
      rejected: 0,
      fingerprint: 'f',
    });
    for (let line = 1; line <= lines; line += 50) {
      await Promise.all(
        Array.from({ length: Math.min(50, lines - line + 1) }, async (_, i) => {
          const id = batchLineId(batchId, line + i);
          await index.register({ id, createdAt, source: 'request-file', request: REQUEST });
          if (line + i <= running)
            await index.advance(
              taskUpdate({ id, request: REQUEST }, taskState({ status: 'running' }), createdAt),
            );
        }),
      );
    }
    const batchDeps = {
      ...deps,
      index,
      batches,
      admission: { queue, settings: SETTINGS },
      objects: { getText: async () => '', putText: async () => undefined, putJson: async () => undefined },
      bucket: 'bucket',
    };

    // Act
    const read = await readUnitsOf(tables.client(), () => getBatch(batchId, batchDeps));

    // Assess: the model charges each empty count 0.5 (DynamoDB's least), which dynalite does not.
    const model = batchGetReadUnits([lines - running, running, 0, 0, 0, 0]);
    const emptyCounts = 4 * ALL_IN_ASSUMPTIONS.rruBatchCountMin;
    expect(read.result?.counts).toMatchObject({ waiting: lines - running, running });
    expect(read.result?.estimatedCompletionAt).toBeDefined();
    expect(read.reads).toBe(1 + 6 + 1);
    expect(read.units).toBeLessThanOrEqual(model);
    expect(read.units).toBeGreaterThanOrEqual((model - emptyCounts) * 0.85);
  }, 120_000);

  it('pages as GET /v1/generations does: apiListPageSize at most', () => {
    const size = ALL_IN_ASSUMPTIONS.apiListPageSize;
    expect(listQuerySchema.safeParse({ limit: String(size) }).success).toBe(true);
    expect(listQuerySchema.safeParse({ limit: String(size + 1) }).success).toBe(false);
  });
});
