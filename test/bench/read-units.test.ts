import { describe, expect, it } from 'vitest';
import { ALL_IN_ASSUMPTIONS } from '../../bench/poll-sim/all-in.js';
import { createGeneration, getGeneration, listGenerations } from '../../functions/api/generations.js';
import { listQuerySchema } from '../../functions/api/schemas.js';
import type { AdmissionSettings } from '../../functions/shared/admission.js';
import { createDynamoAdmissionQueue } from '../../functions/shared/aws/dynamodb-admission.js';
import { createDynamoGenerationIndex } from '../../functions/shared/aws/dynamodb-index.js';
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

  it('pages as GET /v1/generations does: apiListPageSize at most', () => {
    const size = ALL_IN_ASSUMPTIONS.apiListPageSize;
    expect(listQuerySchema.safeParse({ limit: String(size) }).success).toBe(true);
    expect(listQuerySchema.safeParse({ limit: String(size + 1) }).success).toBe(false);
  });
});
