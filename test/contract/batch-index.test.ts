import { beforeEach, describe, expect, it } from 'vitest';
import { createDynamoBatchIndex } from '../../functions/shared/aws/dynamodb-batches.js';
import { createDynamoGenerationIndex } from '../../functions/shared/aws/dynamodb-index.js';
import {
  BatchConflictError,
  type BatchIndex,
  batchLineId,
  type NewBatch,
} from '../../functions/shared/batch.js';
import {
  FINAL_STAGE,
  type GenerationIndex,
  type GenerationUpdate,
  STAGE,
} from '../../functions/shared/generation-index.js';
import { MemoryBatchIndex, MemoryGenerationIndex } from '../fakes/memory-index.js';
import { useLocalTables } from '../support/local-tables.js';

/**
 * One contract for both implementations of the batches: in memory (over the in-memory index) and
 * DynamoDB on dynalite with the table the CDK stack declares. A batch's counts are its
 * generations', counted: each end once, whatever retries, redeliveries or the reconciler write.
 */

const tables = useLocalTables('batches');

const implementations: [string, () => Promise<{ index: GenerationIndex; batches: BatchIndex }>][] = [
  [
    'in memory',
    async () => {
      const index = new MemoryGenerationIndex();
      return { index, batches: new MemoryBatchIndex(index) };
    },
  ],
  [
    'DynamoDB on dynalite',
    async () => {
      const table = await tables.fresh();
      return {
        index: createDynamoGenerationIndex(tables.client(), table),
        batches: createDynamoBatchIndex(tables.client(), table),
      };
    },
  ],
];

const at = (second: number) => new Date(Date.UTC(2026, 11, 1, 12, 0, second)).toISOString();
const request = { prompt: 'a lighthouse', n: 1, model: 'stable-diffusion-3.5-large' };

function newBatch(id: string, total: number, rejected = 0, second = 0): NewBatch {
  return {
    id,
    createdAt: at(second),
    source: 'api',
    priority: 'batch',
    total,
    rejected,
    fingerprint: `fp-${id}`,
  };
}

const step = (id: string, stage: number, changes: Partial<GenerationUpdate>): GenerationUpdate => ({
  id,
  stage,
  status: 'running',
  createdAt: at(0),
  source: 'api',
  ...changes,
});

describe.each(implementations)('%s', (_name, create) => {
  let index: GenerationIndex;
  let batches: BatchIndex;

  beforeEach(async () => {
    ({ index, batches } = await create());
  });

  async function registerLines(batchId: string, lines: readonly number[]) {
    for (const line of lines) {
      await index.register({ id: batchLineId(batchId, line), createdAt: at(1), source: 'api', request });
    }
  }

  it('creates a batch once, counting every valid line waiting, and refuses its id with other requests', async () => {
    expect(await batches.create(newBatch('batch-a', 5, 1))).toEqual({});
    const again = await batches.create(newBatch('batch-a', 5, 1));
    expect(again.existing?.counts).toEqual({
      total: 5,
      rejected: 1,
      waiting: 4,
      running: 0,
      succeeded: 0,
      partial: 0,
      failed: 0,
      canceled: 0,
    });
    await expect(
      batches.create({ ...newBatch('batch-a', 5, 1), fingerprint: 'other' }),
    ).rejects.toBeInstanceOf(BatchConflictError);
  });

  it('counts each generation where it stands, each end once whatever repeats it', async () => {
    await batches.create(newBatch('batch-b', 4));
    await registerLines('batch-b', [1, 2, 3, 4]);
    const id = (line: number) => batchLineId('batch-b', line);
    await index.advance(step(id(1), 2, { status: 'running' }));
    await index.advance(step(id(2), FINAL_STAGE, { status: 'succeeded' }));
    await index.advance(
      step(id(3), FINAL_STAGE, {
        status: 'succeeded',
        failedImages: [{ index: 1, error: { type: 'x', message: 'y' } }] as never,
      }),
    );
    // Redeliveries and the reconciler repeat ends; a late poll comes after the end: none counts.
    await Promise.all([
      index.advance(step(id(2), FINAL_STAGE, { status: 'succeeded' })),
      index.advance(step(id(2), FINAL_STAGE, { status: 'failed' })),
      index.advance(step(id(3), 5, { status: 'running' })),
      index.advance(step(id(4), FINAL_STAGE, { status: 'canceled' })),
      index.advance(step(id(4), FINAL_STAGE, { status: 'canceled' })),
    ]);
    expect((await batches.get('batch-b'))?.counts).toEqual({
      total: 4,
      rejected: 0,
      waiting: 0,
      running: 1,
      succeeded: 1,
      partial: 1,
      failed: 0,
      canceled: 1,
    });
    expect(await batches.allEnded('batch-b')).toBe(false);
    // Without its counts, the same batch.
    const { counts: _, ...summary } = (await batches.get('batch-b')) as NonNullable<
      Awaited<ReturnType<BatchIndex['get']>>
    >;
    expect(await batches.peek('batch-b')).toEqual(summary);
    expect(await batches.peek('batch-missing')).toBeUndefined();
    await index.advance(step(id(1), FINAL_STAGE, { status: 'failed' }));
    expect(await batches.allEnded('batch-b')).toBe(true);
  });

  it('counts concurrent ends of many generations exactly', async () => {
    const lines = Array.from({ length: 40 }, (_, i) => i + 1);
    await batches.create(newBatch('batch-c', lines.length));
    await registerLines('batch-c', lines);
    await Promise.all(
      lines.flatMap((line) => [
        index.advance(step(batchLineId('batch-c', line), STAGE.submitted + 1, { status: 'running' })),
        index.advance(
          step(batchLineId('batch-c', line), FINAL_STAGE, { status: line % 2 ? 'succeeded' : 'failed' }),
        ),
      ]),
    );
    const counts = (await batches.get('batch-c'))?.counts;
    expect(counts).toMatchObject({ total: 40, waiting: 0, running: 0, succeeded: 20, failed: 20 });
    expect(await batches.allEnded('batch-c')).toBe(true);
  });

  it('counts lines not registered yet as waiting, and not ended', async () => {
    await batches.create(newBatch('batch-d', 3));
    await registerLines('batch-d', [1]);
    await index.advance(step(batchLineId('batch-d', 1), FINAL_STAGE, { status: 'succeeded' }));
    expect((await batches.get('batch-d'))?.counts).toMatchObject({ waiting: 2, succeeded: 1 });
    expect(await batches.allEnded('batch-d')).toBe(false);
  });

  it('pages its generations in line order, by count', async () => {
    await batches.create(newBatch('batch-e', 5));
    await registerLines('batch-e', [5, 3, 1, 2, 4]);
    await index.advance(step(batchLineId('batch-e', 2), FINAL_STAGE, { status: 'succeeded' }));
    await index.advance(step(batchLineId('batch-e', 4), FINAL_STAGE, { status: 'succeeded' }));
    const first = await batches.lines('batch-e', { limit: 2 });
    expect(first.items.map((record) => record.id)).toEqual([
      batchLineId('batch-e', 1),
      batchLineId('batch-e', 2),
    ]);
    expect(first.more).toBe(true);
    const rest = await batches.lines('batch-e', { limit: 5, afterLine: 2 });
    expect(rest.items.map((record) => record.id)).toEqual(
      [3, 4, 5].map((line) => batchLineId('batch-e', line)),
    );
    expect(rest.more).toBe(false);
    const succeeded = await batches.lines('batch-e', { count: 'succeeded', limit: 10 });
    expect(succeeded.items.map((record) => record.status)).toEqual(['succeeded', 'succeeded']);
  });

  it('lists batches newest first, apart from generations', async () => {
    await batches.create(newBatch('batch-f1', 1, 0, 1));
    await batches.create(newBatch('batch-f2', 1, 0, 2));
    await index.register({ id: 'gen-x', createdAt: at(3), source: 'api', request });
    const page = await batches.list({ limit: 1 });
    expect(page.items.map((batch) => batch.id)).toEqual(['batch-f2']);
    expect(page.more).toBe(true);
    const next = await batches.list({ limit: 5, after: { createdAt: at(2), id: 'batch-f2' } });
    expect(next.items.map((batch) => batch.id)).toEqual(['batch-f1']);
    expect((await index.list({ limit: 10 })).items.map((record) => record.id)).toEqual(['gen-x']);
  });

  it('gives the completion to one claimer, and to another only once the claim is stale', async () => {
    await batches.create(newBatch('batch-g', 1));
    await registerLines('batch-g', [1]);
    await index.advance(step(batchLineId('batch-g', 1), FINAL_STAGE, { status: 'succeeded' }));
    const claims = await Promise.all(
      ['a', 'b', 'c'].map((owner) => batches.claimCompletion('batch-g', owner, at(10), at(0))),
    );
    expect(claims.filter(Boolean)).toHaveLength(1);
    const winner = ['a', 'b', 'c'][claims.findIndex(Boolean)] as string;
    const loser = ['a', 'b', 'c'].find((owner) => owner !== winner) as string;
    expect(await batches.claimCompletion('batch-g', loser, at(11), at(5))).toBeUndefined();
    // The winner died: after its claim went stale, another takes over and ends the batch.
    expect(await batches.claimCompletion('batch-g', loser, at(30), at(20))).toBeDefined();
    const counts = (await batches.get('batch-g'))?.counts as never;
    expect(
      await batches.complete('batch-g', winner, { status: 'completed', at: at(31), resultsKey: 'k', counts }),
    ).toBe(false);
    expect(
      await batches.complete('batch-g', loser, { status: 'completed', at: at(31), resultsKey: 'k', counts }),
    ).toBe(true);
    const ended = await batches.get('batch-g');
    expect(ended).toMatchObject({ status: 'completed', completedAt: at(31), resultsKey: 'k' });
    expect(ended?.completion).toBeUndefined();
    expect(await batches.claimCompletion('batch-g', 'd', at(40), at(39))).toBeUndefined();
  });

  it('cancels a batch in progress once; unstarted lines then count canceled and ended', async () => {
    await batches.create(newBatch('batch-h', 3));
    await registerLines('batch-h', [1]);
    await index.advance(step(batchLineId('batch-h', 1), FINAL_STAGE, { status: 'canceled' }));
    expect((await batches.markCancelling('batch-h'))?.status).toBe('cancelling');
    expect((await batches.markCancelling('batch-h'))?.status).toBe('cancelling');
    expect((await batches.get('batch-h'))?.counts).toMatchObject({ waiting: 0, canceled: 3 });
    expect(await batches.allEnded('batch-h')).toBe(true);
    expect(await batches.markCancelling('batch-missing')).toBeUndefined();
  });
});
