import { describe, expect, it } from 'vitest';
import {
  type BatchCompletionDeps,
  completeBatchOf,
  STALE_CLAIM_MS,
} from '../../functions/notify/batch-completion.js';
import { batchLineId, type NewBatch } from '../../functions/shared/batch.js';
import { DETAIL_TYPE } from '../../functions/shared/events.js';
import { FINAL_STAGE } from '../../functions/shared/generation-index.js';
import { silentLogger } from '../../functions/shared/logger.js';
import type { ObjectStore } from '../../functions/shared/object-store.js';
import { MemoryBatchIndex, MemoryGenerationIndex } from '../fakes/memory-index.js';

const START = Date.parse('2026-12-01T12:00:00.000Z');
const request = { prompt: 'a lighthouse', n: 1, model: 'stable-diffusion-3.5-large' };

function setup(lines = 2) {
  const index = new MemoryGenerationIndex();
  const batches = new MemoryBatchIndex(index);
  const objects = new Map<string, string>();
  const store: ObjectStore = {
    async getText({ key }) {
      const text = objects.get(key);
      if (text === undefined) throw new Error(`NoSuchKey ${key}`);
      return text;
    },
    async putJson({ key }, value) {
      objects.set(key, JSON.stringify(value));
    },
    async putText({ key }, body) {
      objects.set(key, body);
    },
  };
  const published: { detailType: string; detail: Record<string, unknown> }[] = [];
  let now = START;
  const deps: BatchCompletionDeps & { refuse?: boolean } = {
    batches,
    index,
    objects: store,
    bucket: 'images',
    events: {
      async publish(detailType, detail) {
        if (deps.refuse) throw new Error('EventBridge refused');
        published.push({ detailType, detail });
      },
    },
    logger: silentLogger,
    clock: { now: () => now },
    webhookPolicy: {},
  };
  const batch: NewBatch = {
    id: 'batch-x',
    createdAt: new Date(START).toISOString(),
    source: 'api',
    priority: 'batch',
    total: lines,
    rejected: 0,
    fingerprint: 'f',
  };
  const end = async (line: number, status: 'succeeded' | 'failed') => {
    const id = batchLineId('batch-x', line);
    await index.advance({
      id,
      stage: FINAL_STAGE,
      status,
      createdAt: batch.createdAt,
      source: 'api',
      ...(status === 'succeeded'
        ? {
            images: [
              {
                index: 0,
                key: `generations/${id}/0.png`,
                bytes: 1,
                sha256: 'a'.repeat(64),
                contentType: 'image/png',
                seed: line,
              },
            ],
          }
        : { error: { type: 'task_failed', message: 'no' } }),
    });
  };
  return {
    index,
    batches,
    objects,
    published,
    deps,
    end,
    advanceClock: (ms: number) => {
      now += ms;
    },
    async create() {
      await batches.create(batch);
      for (let line = 1; line <= lines; line++) {
        await index.register({
          id: batchLineId('batch-x', line),
          createdAt: batch.createdAt,
          source: 'api',
          request,
        });
      }
    },
  };
}

describe('completing a batch', () => {
  it('waits for its last line, then completes it once however many finishers race', async () => {
    const rig = setup(2);
    await rig.create();
    await rig.end(1, 'succeeded');
    expect(await completeBatchOf(batchLineId('batch-x', 1), rig.deps)).toBe('open');

    await rig.end(2, 'failed');
    const outcomes = await Promise.all(
      [1, 2, 2].map((line) => completeBatchOf(batchLineId('batch-x', line), rig.deps)),
    );
    expect(outcomes.filter((outcome) => outcome === 'completed')).toHaveLength(1);
    expect(rig.published.map((event) => event.detailType)).toEqual([DETAIL_TYPE.batchCompleted]);
    expect(rig.published[0]?.detail).toMatchObject({
      id: 'batch-x',
      status: 'completed',
      counts: { total: 2, succeeded: 1, failed: 1 },
      resultsKey: 'batches/batch-x/results.jsonl',
    });
    const results = (rig.objects.get('batches/batch-x/results.jsonl') ?? '')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(results).toEqual([
      { line: 1, id: 'batch-x-1', status: 'succeeded', images: ['generations/batch-x-1/0.png'], seeds: [1] },
      { line: 2, id: 'batch-x-2', status: 'failed', error: { type: 'task_failed', message: 'no' } },
    ]);
    expect(await rig.batches.get('batch-x')).toMatchObject({ status: 'completed' });
    // A late repeat (a retried Notify, the reconciler) finds it ended.
    expect(await completeBatchOf(batchLineId('batch-x', 2), rig.deps)).toBe('taken');
    expect(rig.published).toHaveLength(1);
  });

  it('leaves the claim when the event is refused; the next finisher after it went stale publishes it, with the same id', async () => {
    const rig = setup(1);
    await rig.create();
    await rig.end(1, 'succeeded');
    rig.deps.refuse = true;
    expect(await completeBatchOf(batchLineId('batch-x', 1), rig.deps)).toBe('failed');
    rig.deps.refuse = false;
    expect(await completeBatchOf(batchLineId('batch-x', 1), rig.deps)).toBe('taken');
    rig.advanceClock(STALE_CLAIM_MS + 1);
    expect(await completeBatchOf(batchLineId('batch-x', 1), rig.deps)).toBe('completed');
    expect(rig.published).toHaveLength(1);
    expect(await rig.batches.get('batch-x')).toMatchObject({ status: 'completed' });
  });

  it('ignores a generation outside any batch', async () => {
    const rig = setup(1);
    expect(await completeBatchOf('gen-20261201120000-abcdef', rig.deps)).toBe('not-a-batch');
  });
});
