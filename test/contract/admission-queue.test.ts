import { BatchWriteCommand, GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { beforeEach, describe, expect, it } from 'vitest';
import { createGeneration, getGeneration } from '../../functions/api/generations.js';
import { dispatch } from '../../functions/dispatch/dispatch.js';
import {
  ADMISSION_KEY,
  type AdmissionQueue,
  type AdmissionSettings,
  admissionItemId,
  aheadIn,
  DISPATCHER_STATE_ID,
  type Lane,
  meanRunSeconds,
  type QueueStanding,
  type WaitingEntry,
  waitingIn,
} from '../../functions/shared/admission.js';
import {
  counterAttribute,
  createDynamoAdmissionQueue,
  queueKeyOf,
} from '../../functions/shared/aws/dynamodb-admission.js';
import { documentClientOf } from '../../functions/shared/aws/dynamodb-documents.js';
import { createDynamoGenerationIndex } from '../../functions/shared/aws/dynamodb-index.js';
import { generationRequestSchema } from '../../functions/shared/generation-request.js';
import { silentLogger } from '../../functions/shared/logger.js';
import { MemoryAdmissionQueue } from '../../local/memory-admission.js';
import { FakeExecutionService } from '../api/fake-executions.js';
import { fakePresign } from '../api/fixtures.js';
import { useLocalTables } from '../support/local-tables.js';
import { beforeNextWrite, type Racing, racingInMemory } from '../support/racing.js';
import { readUnitsOf } from '../support/read-units.js';

/**
 * One contract for every implementation of the admission queue: the in-memory one (the local
 * runner without DynamoDB, the unit tests) and the DynamoDB adapter against dynalite, in the
 * generations table the CDK stack declares. An implementation that drifts fails here.
 */

const tables = useLocalTables('admission');

const implementations: [string, () => Promise<AdmissionQueue>, () => Racing][] = [
  ['the in-memory queue', async () => new MemoryAdmissionQueue(), () => racingInMemory],
  [
    'the DynamoDB adapter on dynalite',
    async () => createDynamoAdmissionQueue(tables.client(), await tables.fresh()),
    () => beforeNextWrite(tables.client()),
  ],
];

const T0 = Date.UTC(2026, 10, 30, 12, 0, 0);

/** The real dispatcher over a queue, with `depth` slots on one account and executions that always resume. */
const settingsOf = (depth: number) => ({
  resumer: { resume: async () => 'resumed' as const, fail: async () => 'failed' as const },
  settings: {
    accounts: [{ name: 'main', depth, submitsPerSecond: 2 }],
    batchEvery: 4,
    maxQueueSeconds: 604_800,
  },
  sleep: async () => undefined,
  logger: silentLogger,
});
const entry = (id: string, lane: Lane, at: number, token = `token-${id}`): WaitingEntry => ({
  id,
  lane,
  enqueuedAt: T0 + at,
  expectedRunSeconds: 20,
  token,
});

/** A lane's entries as `enqueue` was given them: without the order the store gave them. */
const given = (entries: readonly WaitingEntry[]) => entries.map(({ order: _order, ...rest }) => rest);

/** Entries ahead of `id` in its lane, by the lanes' counters, as the API reads them. */
function ahead(standing: QueueStanding, id: string): number {
  const record = standing.records.get(id);
  if (record?.kind !== 'waiting') throw new Error(`${id} does not wait`);
  return aheadIn(standing.lanes[record.lane], record.seq);
}

describe.each(implementations)('%s', (_name, create, racingOf) => {
  let queue: AdmissionQueue;

  beforeEach(async () => {
    queue = await create();
  });

  it('returns a lane’s entries oldest first, with their tokens, and only that lane’s', async () => {
    await queue.enqueue(entry('b', 'batch', 2));
    await queue.enqueue(entry('a', 'batch', 1));
    await queue.enqueue(entry('i', 'interactive', 0));

    expect(given(await queue.waiting('batch', 10))).toEqual([entry('a', 'batch', 1), entry('b', 'batch', 2)]);
    // Each with its place: both outside any batch, in the round after the lane's clock.
    expect((await queue.waiting('batch', 10)).map((e) => e.order)).toEqual([
      { round: 1, arrival: 2, solo: 2 },
      { round: 1, arrival: 1, solo: 1 },
    ]);
    expect((await queue.waiting('interactive', 10)).map((e) => e.id)).toEqual(['i']);
    expect((await queue.waiting('batch', 1)).map((e) => e.id)).toEqual(['a']);
  });

  it('orders entries enqueued in the same millisecond by id', async () => {
    await queue.enqueue(entry('y', 'batch', 5));
    await queue.enqueue(entry('x', 'batch', 5));

    expect((await queue.waiting('batch', 10)).map((e) => e.id)).toEqual(['x', 'y']);
  });

  it('counts a lane', async () => {
    for (let i = 0; i < 5; i++) await queue.enqueue(entry(`e${i}`, 'batch', i));

    expect(await queue.count('batch')).toBe(5);
    expect(await queue.count('interactive')).toBe(0);
  });

  it('numbers each lane’s new entries: where they stand, by the lanes’ counters', async () => {
    for (let i = 0; i < 5; i++) await queue.enqueue(entry(`b${i}`, 'batch', i));
    await queue.enqueue(entry('i0', 'interactive', 9));

    const standing = await queue.standing(['b0', 'b3', 'i0', 'nobody']);

    expect(waitingIn(standing.lanes.batch)).toBe(5);
    expect(waitingIn(standing.lanes.interactive)).toBe(1);
    expect([ahead(standing, 'b0'), ahead(standing, 'b3'), ahead(standing, 'i0')]).toEqual([0, 3, 0]);
    expect(standing.records.get('b3')).toMatchObject({ kind: 'waiting', lane: 'batch', token: 'token-b3' });
    expect(standing.records.has('nobody')).toBe(false);
    expect(standing.state).toEqual({ interactiveStreak: 0 });
  });

  it('counts each grant, and each waiting entry that leaves otherwise, as having left its lane', async () => {
    for (let i = 0; i < 5; i++) await queue.enqueue(entry(`b${i}`, 'batch', i));

    await queue.grant('b0', 'main', T0 + 10);
    let standing = await queue.standing(['b0', 'b3']);
    expect([waitingIn(standing.lanes.batch), ahead(standing, 'b3')]).toEqual([4, 2]);
    expect(standing.records.get('b0')).toMatchObject({ kind: 'granted' });

    // The head cancelled, then the next one timed out (released with its token).
    await queue.release('b1');
    await queue.release('b2', 'token-b2');
    // A slot's release moves nothing.
    await queue.release('b0');
    standing = await queue.standing(['b3', 'b4']);
    expect([waitingIn(standing.lanes.batch), ahead(standing, 'b3'), ahead(standing, 'b4')]).toEqual([
      2, 0, 1,
    ]);
  });

  it('counts an entry cancelled behind another as if it had been ahead of it (the documented approximation)', async () => {
    for (let i = 0; i < 5; i++) await queue.enqueue(entry(`b${i}`, 'batch', i));

    await queue.release('b3');
    let standing = await queue.standing(['b2']);
    // The lane's length is exact; b2's place would be 2: the counters cannot tell where b3 was.
    expect([waitingIn(standing.lanes.batch), ahead(standing, 'b2')]).toEqual([4, 1]);

    await queue.grant('b0', 'main', T0 + 10);
    await queue.grant('b1', 'main', T0 + 11);
    standing = await queue.standing(['b2', 'b4']);
    expect([waitingIn(standing.lanes.batch), ahead(standing, 'b2'), ahead(standing, 'b4')]).toEqual([
      2, 0, 1,
    ]);
  });

  it('keeps an entry’s place when it is enqueued again: a slot given back waits at the head, counted again', async () => {
    await queue.enqueue(entry('a', 'batch', 1, 'first'));
    await queue.enqueue(entry('b', 'batch', 2));
    await queue.grant('a', 'main', T0 + 5, 'first');

    await queue.enqueue(entry('a', 'batch', 9, 'redriven'));

    const standing = await queue.standing(['a', 'b']);
    expect([ahead(standing, 'a'), ahead(standing, 'b')]).toEqual([0, 1]);
    expect(waitingIn(standing.lanes.batch)).toBe(2);
    expect(await queue.count('batch')).toBe(2);
  });

  it('sums the expected runs of the entries waiting: added as each comes, taken off as it leaves, back when given back', async () => {
    const runOf = (id: string, seconds: number, at: number) => ({
      ...entry(id, 'batch', at),
      expectedRunSeconds: seconds,
    });
    await queue.enqueue(runOf('a', 12.5, 1));
    await queue.enqueue(runOf('b', 30, 2));
    await queue.enqueue(runOf('c', 7.25, 3));
    await queue.enqueue({ ...entry('i', 'interactive', 4), expectedRunSeconds: 4 });
    const runs = async () => {
      const { lanes } = await queue.standing([]);
      return [lanes.batch.runMs, lanes.interactive.runMs];
    };
    expect(await runs()).toEqual([49_750, 4000]);

    // a granted, c cancelled while it waits, then a given back unused: it waits again.
    await queue.grant('a', 'main', T0 + 10, 'token-a');
    await queue.release('c');
    expect(await runs()).toEqual([30_000, 4000]);
    await queue.enqueue({ ...runOf('a', 12.5, 11), token: 'redriven' });

    expect(await runs()).toEqual([42_500, 4000]);
    // Its mean is what a run ahead takes before any pace is observed.
    expect(meanRunSeconds((await queue.standing([])).lanes)).toBeCloseTo((42.5 + 4) / 3, 9);
  });

  it('interleaves a small batch enqueued after a big one with it, grant for grant', async () => {
    const dispatcher = settingsOf(1);
    const granted: string[] = [];
    /** One run of the real dispatcher: it grants the one slot; the task ends at once. */
    const grantNext = async (at: number) => {
      const report = await dispatch({ queue, ...dispatcher, clock: { now: () => T0 + at } });
      for (const { id } of report.granted) {
        granted.push(id);
        await queue.release(id);
      }
    };
    for (let line = 1; line <= 30; line++) await queue.enqueue(entry(`batch-big-${line}`, 'batch', line));
    for (let i = 0; i < 3; i++) await grantNext(100 + i);

    // It comes while the big one is at round 3: its line k goes in round 3 + k.
    for (let line = 1; line <= 5; line++)
      await queue.enqueue(entry(`batch-small-${line}`, 'batch', 200 + line));
    for (let i = 0; i < 2; i++) await grantNext(300 + i);
    const standing = await queue.standing(['batch-small-5', 'batch-big-30']);
    // Two batches share the lane: two lines a round (exact: 7, and 29, all the others).
    expect([ahead(standing, 'batch-small-5'), ahead(standing, 'batch-big-30')]).toEqual([6, 29]);
    expect(waitingIn(standing.lanes.batch)).toBe(30);
    for (let i = 0; i < 10; i++) await grantNext(400 + i);

    expect(granted).toEqual([
      ...[1, 2, 3, 4].map((line) => `batch-big-${line}`),
      ...[1, 2, 3, 4, 5].flatMap((line) => [`batch-small-${line}`, `batch-big-${line + 4}`]),
      'batch-big-10',
    ]);
    expect(await queue.count('batch')).toBe(20);
    expect(waitingIn((await queue.standing([])).lanes.batch)).toBe(20);
  });

  it('keeps the lanes’ counters and the dispatcher’s state side by side, neither overwriting the other', async () => {
    await queue.enqueue(entry('b0', 'batch', 0));
    // With each account's observed pace: the start estimates read it in the same read.
    const state = {
      interactiveStreak: 2,
      runnersFreeAt: { main: T0 + 20_000 },
      pace: { main: { freed: 12.5, overMs: 275_000, fullSince: T0 } },
    };
    await queue.writeState(state);
    await queue.enqueue(entry('b1', 'batch', 1));

    const standing = await queue.standing(['b1']);

    expect(standing.state).toEqual(state);
    expect(await queue.readState()).toEqual(standing.state);
    expect([waitingIn(standing.lanes.batch), ahead(standing, 'b1')]).toEqual([2, 1]);
  });

  it('keeps the first place and takes the new token when the same id is enqueued again', async () => {
    await queue.enqueue(entry('a', 'batch', 1, 'first'));
    await queue.enqueue(entry('b', 'batch', 2));
    await queue.enqueue(entry('a', 'batch', 9, 'retried'));

    expect(given(await queue.waiting('batch', 10))).toEqual([
      entry('a', 'batch', 1, 'retried'),
      entry('b', 'batch', 2),
    ]);
  });

  it('turns a waiting entry into a slot on its account, once', async () => {
    await queue.enqueue(entry('a', 'interactive', 1));

    expect(await queue.grant('a', 'main', T0 + 100)).toBe(true);
    expect(await queue.grant('a', 'other', T0 + 200)).toBe(false);
    expect(await queue.waiting('interactive', 10)).toEqual([]);
    expect(await queue.slots('main')).toEqual([
      { id: 'a', account: 'main', lane: 'interactive', grantedAt: T0 + 100, expectedRunSeconds: 20 },
    ]);
    expect(await queue.slots('other')).toEqual([]);
    expect(await queue.get('a')).toMatchObject({ kind: 'granted', account: 'main', token: 'token-a' });
  });

  it('refuses to grant what does not wait', async () => {
    expect(await queue.grant('nobody', 'main', T0)).toBe(false);
  });

  it('notes a slot’s submit and start once, and never on a released one', async () => {
    await queue.enqueue(entry('a', 'batch', 1));
    await queue.grant('a', 'main', T0 + 10);

    await queue.note('a', { submittedAt: T0 + 20 });
    await queue.note('a', { startedAt: T0 + 30 });
    await queue.note('a', { startedAt: T0 + 99 });
    expect(await queue.slots('main')).toEqual([
      expect.objectContaining({ id: 'a', submittedAt: T0 + 20, startedAt: T0 + 30 }),
    ]);

    await queue.release('a');
    await queue.note('a', { startedAt: T0 + 40 });
    expect(await queue.get('a')).toBeUndefined();
  });

  it('frees a slot or drops an entry on release, idempotently', async () => {
    await queue.enqueue(entry('waiting', 'batch', 1));
    await queue.enqueue(entry('granted', 'batch', 2));
    await queue.grant('granted', 'main', T0 + 5);

    await queue.release('waiting');
    await queue.release('granted');
    await queue.release('granted');

    expect(await queue.waiting('batch', 10)).toEqual([]);
    expect(await queue.slots('main')).toEqual([]);
    expect(await queue.grant('waiting', 'main', T0 + 6)).toBe(false);
  });

  it('puts a granted entry back in its lane, at its first place, when enqueued again', async () => {
    await queue.enqueue(entry('a', 'batch', 1));
    await queue.enqueue(entry('b', 'batch', 2));
    await queue.grant('a', 'main', T0 + 5);

    await queue.enqueue(entry('a', 'batch', 50, 'second attempt'));

    expect((await queue.waiting('batch', 10)).map((e) => [e.id, e.token])).toEqual([
      ['a', 'second attempt'],
      ['b', 'token-b'],
    ]);
    expect(await queue.slots('main')).toEqual([]);
  });

  it('creates an entry only if still absent: one that appeared meanwhile, granted and submitting, is left alone', async () => {
    const racing = racingOf();
    // Between this Admit's read (nothing there) and its write, another attempt enqueued and
    // was granted, and its execution began to submit.
    await racing(
      'a',
      async () => {
        await queue.enqueue(entry('a', 'batch', 1, 'first'));
        await queue.grant('a', 'main', T0 + 5, 'first');
        await queue.note('a', { submitAttemptAt: T0 + 6, submitSeed: 7 });
      },
      () => queue.enqueue(entry('a', 'batch', 9, 'late')),
    );

    expect(await queue.get('a')).toMatchObject({
      kind: 'granted',
      token: 'first',
      enqueuedAt: T0 + 1,
      submitAttemptAt: T0 + 6,
      submitSeed: 7,
    });
    expect(await queue.count('batch')).toBe(0);
  });

  it('writes a re-enqueue only over the entry as it read it: a grant and a submit in between stand', async () => {
    const racing = racingOf();
    await queue.enqueue(entry('a', 'batch', 1, 'first'));

    await racing(
      'a',
      async () => {
        await queue.grant('a', 'main', T0 + 5, 'first');
        await queue.note('a', { submitAttemptAt: T0 + 6 });
      },
      () => queue.enqueue(entry('a', 'batch', 9, 'retried')),
    );

    expect(await queue.get('a')).toMatchObject({ kind: 'granted', token: 'first', submitAttemptAt: T0 + 6 });
    expect(await queue.waiting('batch', 10)).toEqual([]);
  });

  it('leaves a slot whose execution attempted a submit as it is when enqueued again (that Admit is stale)', async () => {
    await queue.enqueue(entry('a', 'batch', 1, 'first'));
    await queue.grant('a', 'main', T0 + 5, 'first');
    await queue.note('a', { submitAttemptAt: T0 + 6, submitSeed: 3 });

    await queue.enqueue(entry('a', 'batch', 9, 'stale'));

    expect(await queue.slots('main')).toEqual([
      expect.objectContaining({ id: 'a', grantedAt: T0 + 5, submitAttemptAt: T0 + 6, submitSeed: 3 }),
    ]);
    expect(await queue.get('a')).toMatchObject({ kind: 'granted', token: 'first' });
  });

  it('changes nothing when the same token is enqueued again', async () => {
    await queue.enqueue(entry('a', 'batch', 1, 'only'));
    await queue.grant('a', 'main', T0 + 5, 'only');

    await queue.enqueue(entry('a', 'batch', 9, 'only'));

    expect(await queue.get('a')).toMatchObject({ kind: 'granted', grantedAt: T0 + 5, enqueuedAt: T0 + 1 });
  });

  it('refuses a grant with a token the entry no longer holds (enqueued again since it was read)', async () => {
    await queue.enqueue(entry('a', 'batch', 1, 'first'));
    await queue.enqueue(entry('a', 'batch', 9, 'retried'));

    expect(await queue.grant('a', 'main', T0 + 5, 'first')).toBe(false);
    expect(given(await queue.waiting('batch', 10))).toEqual([entry('a', 'batch', 1, 'retried')]);
    expect(await queue.grant('a', 'main', T0 + 6, 'retried')).toBe(true);
  });

  it('releases with a token only the record holding it: a re-queued entry outlives its old grant', async () => {
    await queue.enqueue(entry('a', 'batch', 1, 'first'));
    await queue.grant('a', 'main', T0 + 5, 'first');
    // The execution was redriven before it used its grant: it waits again with a new token.
    await queue.enqueue(entry('a', 'batch', 9, 'redriven'));

    expect(await queue.release('a', 'first')).toBe(false);
    expect(given(await queue.waiting('batch', 10))).toEqual([entry('a', 'batch', 1, 'redriven')]);
    expect(await queue.release('a', 'redriven')).toBe(true);
    expect(await queue.get('a')).toBeUndefined();
    expect(await queue.release('a')).toBe(false);
  });

  it('remembers the tasks created on an account since a time, apart from other accounts, until pruned', async () => {
    await queue.recordTask('main', 'old', T0);
    await queue.recordTask('main', 'new', T0 + 60_000);
    await queue.recordTask('other', 'elsewhere', T0 + 60_000);

    expect([...(await queue.recentTasks('main', T0))].sort()).toEqual(['new', 'old']);
    expect([...(await queue.recentTasks('main', T0 + 1))]).toEqual(['new']);
    await queue.pruneTasks('main', T0 + 1);
    expect([...(await queue.recentTasks('main', 0))]).toEqual(['new']);
    expect([...(await queue.recentTasks('other', 0))]).toEqual(['elsewhere']);
    expect([...(await queue.recentTasks('nobody', 0))]).toEqual([]);
  });

  it('keeps the dispatcher’s state', async () => {
    expect(await queue.readState()).toEqual({ interactiveStreak: 0 });
    await queue.writeState({ interactiveStreak: 3 });
    expect(await queue.readState()).toEqual({ interactiveStreak: 3 });
  });
});

describe('the DynamoDB adapter beside the generations index', () => {
  it('keeps its items out of the index’s lists and gets', async () => {
    const table = await tables.fresh();
    const queue = createDynamoAdmissionQueue(tables.client(), table);
    const index = createDynamoGenerationIndex(tables.client(), table);
    await queue.enqueue(entry('gen-1', 'batch', 1));
    await queue.writeState({ interactiveStreak: 1 });

    expect((await index.list({ limit: 10 })).items).toEqual([]);
    expect((await index.list({ status: 'queued', limit: 10 })).items).toEqual([]);
    expect(await index.get('gen-1')).toBeUndefined();
  });
});

describe('the DynamoDB adapter’s reads of a place in the queue', () => {
  const SETTINGS: AdmissionSettings = {
    accounts: [{ name: 'main', depth: 2, submitsPerSecond: 2 }],
    batchEvery: 4,
    maxQueueSeconds: 604_800,
  };

  /** Enqueued through the adapter; the rest of a larger queue is written in bulk (dynalite takes ~2 ms a call). */
  const ENQUEUED = 10;

  /**
   * A table with `waiting` batch entries and an interactive generation created through the API,
   * then queued. The first {@link ENQUEUED} entries go through `enqueue`; the others are copies
   * of the first one's item, written 25 at a time, with the lane's tail counter added to as
   * their enqueues would have: the same items and counters, in seconds instead of minutes.
   */
  async function queueOf(waiting: number) {
    const table = await tables.fresh();
    const queue = createDynamoAdmissionQueue(tables.client(), table);
    const index = createDynamoGenerationIndex(tables.client(), table);
    const clock = { now: () => T0 + waiting + 1 };
    for (let i = 0; i < Math.min(waiting, ENQUEUED); i++) await queue.enqueue(entry(`b${i}`, 'batch', i));
    const documents = documentClientOf(tables.client());
    const first = await documents.send(
      new GetCommand({ TableName: table, Key: { id: admissionItemId('b0') }, ConsistentRead: true }),
    );
    const copies = Array.from({ length: Math.max(0, waiting - ENQUEUED) }, (_, k) => {
      const { id, lane, enqueuedAt } = entry(`b${ENQUEUED + k}`, 'batch', ENQUEUED + k);
      return {
        ...first.Item,
        id: admissionItemId(id),
        generationId: id,
        token: `token-${id}`,
        enqueuedAt,
        // Outside any batch, in the round after the lane's clock, as `enqueue` numbers them.
        seq: ENQUEUED + k + 1,
        solo: ENQUEUED + k + 1,
        round: 1,
        [ADMISSION_KEY.lane]: lane,
        [ADMISSION_KEY.queueKey]: queueKeyOf({ round: 1 }, enqueuedAt, id),
      };
    });
    for (let k = 0; k < copies.length; k += 25) {
      const items = copies.slice(k, k + 25).map((Item) => ({ PutRequest: { Item } }));
      await documents.send(new BatchWriteCommand({ RequestItems: { [table]: items } }));
    }
    if (copies.length > 0)
      await documents.send(
        new UpdateCommand({
          TableName: table,
          Key: { id: DISPATCHER_STATE_ID },
          UpdateExpression: 'ADD #tail :copies, #solo :copies',
          ExpressionAttributeNames: {
            '#tail': counterAttribute('batch', 'tail'),
            '#solo': counterAttribute('batch', 'soloTail'),
          },
          ExpressionAttributeValues: { ':copies': copies.length },
        }),
      );
    const deps = {
      executions: new FakeExecutionService(clock),
      index,
      presign: fakePresign,
      clock,
      logger: silentLogger,
      admission: { queue, settings: SETTINGS },
    };
    const { id } = await createGeneration(
      generationRequestSchema.parse({ prompt: 'waits its turn' }),
      {},
      deps,
    );
    await queue.enqueue({
      id,
      lane: 'interactive',
      enqueuedAt: clock.now(),
      expectedRunSeconds: 20,
      token: 't',
    });
    return { queue, deps, id };
  }

  it('costs at most 2 read units for one GET, the same with 10 or 5,000 entries waiting', async () => {
    const costs = [];
    for (const waiting of [10, 5000]) {
      const { queue, deps, id } = await queueOf(waiting);
      const place = await readUnitsOf(tables.client(), () => queue.standing([id]));
      const get = await readUnitsOf(tables.client(), () => getGeneration(id, deps));
      // Read as counted: the waiting entries are all there, and the GET shows the whole batch lane.
      expect(await queue.count('batch')).toBe(waiting);
      expect(get.result?.queue).toMatchObject({ lane: 'interactive', position: 0 });
      expect(waitingIn(place.result.lanes.batch)).toBe(waiting);
      costs.push({ waiting, place: place.units, get: get.units, reads: get.reads });
    }

    const [few, many] = costs;
    expect(many?.get).toBeLessThanOrEqual(2);
    expect(many?.place).toBeLessThanOrEqual(2);
    expect({ ...many, waiting: 0 }).toEqual({ ...few, waiting: 0 });
  }, 120_000);
});
