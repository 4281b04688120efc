import type { Hono } from 'hono';
import type { ApiOptions } from '../../functions/api/app.js';
import { type BatchLine, startBatchLines } from '../../functions/shared/batch-lines.js';
import type { Clock } from '../../functions/shared/clock.js';
import { generationRequestSchema } from '../../functions/shared/generation-request.js';
import { failedUpdate, finalUpdateOfState } from '../../functions/shared/index-updates.js';
import type { ObjectLocation, ObjectStore } from '../../functions/shared/object-store.js';
import { API_BATCH_PREFIX } from '../../functions/shared/request-keys.js';
import { MemoryBatchIndex, MemoryGenerationIndex } from '../fakes/memory-index.js';
import { FakeExecutionService } from './fake-executions.js';
import { apiOver, taskState } from './fixtures.js';

/** The bucket the batch routes write to in these tests. */
export const BUCKET = 'images-bucket';

/** One object as {@link MemoryObjectStore} keeps it. */
export interface StoredObject {
  readonly body: string;
  readonly contentType: string;
}

/** An in-memory {@link ObjectStore}: objects by `bucket/key`, the current version only. */
export class MemoryObjectStore implements ObjectStore {
  readonly objects = new Map<string, StoredObject>();
  /** When set, every write rejects with it (an outage of S3). */
  failure?: Error;

  async getText(location: ObjectLocation): Promise<string> {
    const stored = this.objects.get(`${location.bucket}/${location.key}`);
    if (!stored) throw new Error(`NoSuchKey: ${location.key}`);
    return stored.body;
  }

  async putJson(location: Omit<ObjectLocation, 'versionId'>, value: unknown): Promise<void> {
    await this.putText(location, `${JSON.stringify(value, null, 2)}\n`, 'application/json');
  }

  async putText(
    location: Omit<ObjectLocation, 'versionId'>,
    body: string,
    contentType: string,
  ): Promise<void> {
    if (this.failure) throw this.failure;
    this.objects.set(`${location.bucket}/${location.key}`, { body, contentType });
  }

  /** The object at `key` in {@link BUCKET}, or undefined. */
  get(key: string): StoredObject | undefined {
    return this.objects.get(`${BUCKET}/${key}`);
  }
}

/** A clock tests move by hand. */
export class StepClock implements Clock {
  constructor(private at: number) {}

  now(): number {
    return this.at;
  }

  advance(ms: number): void {
    this.at += ms;
  }
}

export interface BatchWorld {
  readonly app: Hono;
  readonly index: MemoryGenerationIndex;
  readonly batches: MemoryBatchIndex;
  readonly executions: FakeExecutionService;
  readonly objects: MemoryObjectStore;
  readonly clock: StepClock;
}

/** The API with the batch routes over in-memory fakes (no admission), the clock at `now`. */
export function batchWorld(now: number, options: ApiOptions = {}): BatchWorld {
  const clock = new StepClock(now);
  const index = new MemoryGenerationIndex();
  const batches = new MemoryBatchIndex(index);
  const executions = new FakeExecutionService(clock, index);
  const objects = new MemoryObjectStore();
  const app = apiOver({ executions, index, batches, objects, bucket: BUCKET }, clock, options);
  return { app, index, batches, executions, objects, clock };
}

/** Where the API writes a batch's requests for the trigger. */
export const requestsKeyOf = (batchId: string) => `${API_BATCH_PREFIX}${batchId}.jsonl`;

/**
 * What the trigger does with the file the API wrote: each non-blank line, numbered as in an
 * editor, registered and started as generation `<batch id>-<line>` (the trigger's own parsing is
 * not under test here: the API wrote only valid, normalized requests), `concurrency` lines at a time.
 */
export async function startBatchFile(world: BatchWorld, batchId: string, concurrency = 8): Promise<void> {
  const file = world.objects.get(requestsKeyOf(batchId));
  if (!file) throw new Error(`No requests file for ${batchId}`);
  const lines: BatchLine[] = file.body
    .split('\n')
    .map((content, index) => ({ content, line: index + 1 }))
    .filter(({ content }) => content.trim() !== '')
    .map(({ content, line }) => ({ line, request: generationRequestSchema.parse(JSON.parse(content)) }));
  await startBatchLines(
    batchId,
    'api',
    lines,
    {
      batches: world.batches,
      index: world.index,
      executions: world.executions,
      objects: world.objects,
      bucket: BUCKET,
      clock: world.clock,
    },
    [],
    concurrency,
  );
}

/** Records a generation's end in the index as Notify would: succeeded with one image, or failed. */
export async function endGeneration(
  world: BatchWorld,
  id: string,
  outcome: 'succeeded' | 'failed',
): Promise<void> {
  const record = await world.index.get(id);
  if (!record) throw new Error(`No generation ${id}`);
  const endedAt = new Date(world.clock.now()).toISOString();
  const state = { id, request: record.request };
  if (outcome === 'failed') {
    await world.index.advance(
      failedUpdate(
        state,
        { error: 'DashScopeTaskFailed', cause: 'Algorithm process error' },
        record.createdAt,
        endedAt,
      ),
    );
    return;
  }
  const task = taskState({ status: 'succeeded', dashscopeStatus: 'SUCCEEDED' });
  const result = {
    manifestKey: `generations/${id}/manifest.json`,
    status: 'complete',
    images: [
      {
        index: 0,
        key: `generations/${id}/0.png`,
        bytes: 1234,
        sha256: 'a'.repeat(64),
        contentType: 'image/png',
        seed: 42,
      },
    ],
    failed: [],
  };
  await world.index.advance(
    finalUpdateOfState('succeeded', { ...state, task, result }, record.createdAt, endedAt),
  );
}

/** Ends a batch as its finisher does: the claim, then the end with its results key and counts. */
export async function finishBatch(world: BatchWorld, batchId: string): Promise<void> {
  const now = new Date(world.clock.now()).toISOString();
  const claimed = await world.batches.claimCompletion(batchId, 'finisher-1', now, now);
  if (!claimed) throw new Error(`Batch ${batchId} could not be claimed`);
  const status = claimed.status === 'cancelling' ? 'cancelled' : 'completed';
  const done = await world.batches.complete(batchId, 'finisher-1', {
    status,
    at: now,
    resultsKey: `batches/${batchId}/results.jsonl`,
    counts: claimed.counts,
  });
  if (!done) throw new Error(`Batch ${batchId} could not be completed`);
}
