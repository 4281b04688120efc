import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createDynamoGenerationIndex } from '../../functions/shared/aws/dynamodb-index.js';
import { AdjustableClock } from '../../functions/shared/clock.js';
import type { GenerationIndex, GenerationRecord } from '../../functions/shared/generation-index.js';
import { type Logger, silentLogger } from '../../functions/shared/logger.js';
import { STATE } from '../../infra/constructs/workflow.js';
import {
  emulatorEndpoint,
  type RunningEmulator,
  startEmulator,
} from '../../local/dashscope-emulator/server.js';
import { ensureTable, type LocalDynamo, startLocalDynamo } from '../../local/dynamodb.js';
import {
  createLocalRunner,
  generationsTableDefinition,
  LOCAL_TABLE,
  type LocalRunner,
} from '../../local/runner.js';
import { type LocalS3, startLocalS3 } from '../../local/s3.js';

/**
 * A failed index write loses nothing: with every write of the workflow's own functions failing
 * (the table unreachable while the generation runs), the execution still ends as it would, and the
 * reconciler, run on the execution's status-change event once the table answers again, leaves the
 * very record the workflow would have written.
 */

let dir: string;
let s3: LocalS3;
let dynamo: LocalDynamo;
let emulator: RunningEmulator;
let clock: AdjustableClock;
let runner: LocalRunner;
let index: GenerationIndex;
/**
 * While set, every UpdateItem of a generation's record fails as an unreachable table would. The
 * admission queue's items (in the same table) stay writable: this is about the index's writes.
 */
let tableDown = false;
const warnings: string[] = [];

const logger: Logger = { ...silentLogger, warn: (message) => warnings.push(message) };

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'index-convergence-'));
  s3 = await startLocalS3({ directory: path.join(dir, 's3') });
  dynamo = await startLocalDynamo();
  dynamo.client.middlewareStack.add(
    (next) => async (args) => {
      const input = args.input as { UpdateExpression?: string; Key?: { id?: string | { S?: string } } };
      const id = input.Key?.id;
      const queueItem = (typeof id === 'string' ? id : (id?.S ?? '')).startsWith('admission#');
      if (tableDown && input.UpdateExpression !== undefined && !queueItem) {
        throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8000'), { name: 'NetworkingError' });
      }
      return next(args);
    },
    { step: 'initialize', name: 'tableDown' },
  );
  clock = new AdjustableClock();
  emulator = await startEmulator({ clock });
  runner = createLocalRunner({
    dashscope: emulatorEndpoint(emulator),
    s3: { client: s3.client, bucket: s3.bucket },
    index: { client: dynamo.client, table: LOCAL_TABLE },
    virtualWaits: clock,
    retryIntervalMs: 5,
    logger,
    // The table comes back after the workflow's last write (Notify) and before the status change.
    interceptTask: async (state, invoke) => {
      const result = await invoke();
      if (state === STATE.notifySucceeded || state === STATE.notifyFailed) tableDown = false;
      return result;
    },
  });
  await ensureTable(dynamo.client, LOCAL_TABLE, generationsTableDefinition(runner.template));
  index = createDynamoGenerationIndex(dynamo.client, LOCAL_TABLE);
});

afterAll(async () => {
  await emulator?.close();
  await s3?.close();
  await dynamo?.close();
  await rm(dir, { recursive: true, force: true });
});

beforeEach(() => {
  emulator.control.reset();
  clock.advance(5_000);
  tableDown = false;
  warnings.length = 0;
});

/** What a reader sees of a record, without what differs from one run to another. */
function shown(record: GenerationRecord | undefined) {
  if (!record) return undefined;
  const { id: _, createdAt: __, updatedAt: ___, endedAt: ____, dashscope: _____, ...rest } = record;
  return {
    ...rest,
    images: rest.images?.map(({ index: i, bytes, contentType }) => ({
      index: i,
      bytes: bytes > 0,
      contentType,
    })),
    manifestKey: rest.manifestKey?.replace(/generations\/[^/]+\//, 'generations/ID/'),
  };
}

async function runTwice(request: Record<string, unknown>, plan?: () => void) {
  plan?.();
  const healthyId = `healthy-${Date.now()}-${Math.random().toString(16).slice(2, 8)}`;
  const healthy = await runner.run(healthyId, request);

  plan?.();
  tableDown = true;
  const downId = `down-${Date.now()}-${Math.random().toString(16).slice(2, 8)}`;
  const down = await runner.run(downId, request);
  return { healthy, down, healthyId, downId };
}

describe('the generations index when its writes fail', () => {
  it('lets a generation succeed and converges on the record the workflow would have written', async () => {
    const { healthy, down, healthyId, downId } = await runTwice({
      prompt: 'a lighthouse',
      n: 2,
      size: '512*512',
      seed: 3,
    });

    expect(down.status).toBe('SUCCEEDED');
    expect(healthy.status).toBe('SUCCEEDED');
    expect(warnings).toContain('Generations index not updated');
    const record = await index.get(downId);
    expect(record).toMatchObject({ status: 'succeeded', progress: { done: 2, failed: 0, total: 2 } });
    expect(record?.images).toHaveLength(2);
    expect(shown(record)).toEqual(shown(await index.get(healthyId)));
  });

  it('converges a failed generation on the same status and error type', async () => {
    const plan = () =>
      emulator.control.planNextTask({
        fail: { code: 'DataInspectionFailed', message: 'Output data may contain inappropriate content.' },
      });

    const { down, healthyId, downId } = await runTwice({ prompt: 'a storm', size: '512*512' }, plan);

    expect(down.status).toBe('FAILED');
    const record = await index.get(downId);
    expect(record).toMatchObject({ status: 'failed', error: { type: 'content_policy' } });
    // The status-change event carries no task state, so a failed task's per-image progress is
    // what the last poll recorded (nothing, with every write lost); the rest is the same.
    const { progress: _, ...rest } = shown(record) ?? {};
    const { progress: __, ...expected } = shown(await index.get(healthyId)) ?? {};
    expect(rest).toEqual(expected);
  });
});
