import { beforeEach, describe, expect, it } from 'vitest';
import type { AdmissionQueue, Lane, WaitingEntry } from '../../functions/shared/admission.js';
import { createDynamoAdmissionQueue } from '../../functions/shared/aws/dynamodb-admission.js';
import { createDynamoGenerationIndex } from '../../functions/shared/aws/dynamodb-index.js';
import { MemoryAdmissionQueue } from '../../local/memory-admission.js';
import { useLocalTables } from '../support/local-tables.js';
import { beforeNextWrite, type Racing, racingInMemory } from '../support/racing.js';

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
const entry = (id: string, lane: Lane, at: number, token = `token-${id}`): WaitingEntry => ({
  id,
  lane,
  enqueuedAt: T0 + at,
  expectedRunSeconds: 20,
  token,
});

describe.each(implementations)('%s', (_name, create, racingOf) => {
  let queue: AdmissionQueue;

  beforeEach(async () => {
    queue = await create();
  });

  it('returns a lane’s entries oldest first, with their tokens, and only that lane’s', async () => {
    await queue.enqueue(entry('b', 'batch', 2));
    await queue.enqueue(entry('a', 'batch', 1));
    await queue.enqueue(entry('i', 'interactive', 0));

    expect(await queue.waiting('batch', 10)).toEqual([entry('a', 'batch', 1), entry('b', 'batch', 2)]);
    expect((await queue.waiting('interactive', 10)).map((e) => e.id)).toEqual(['i']);
    expect((await queue.waiting('batch', 1)).map((e) => e.id)).toEqual(['a']);
  });

  it('orders entries enqueued in the same millisecond by id', async () => {
    await queue.enqueue(entry('y', 'batch', 5));
    await queue.enqueue(entry('x', 'batch', 5));

    expect((await queue.waiting('batch', 10)).map((e) => e.id)).toEqual(['x', 'y']);
  });

  it('counts a lane, and the entries ahead of one', async () => {
    for (let i = 0; i < 5; i++) await queue.enqueue(entry(`e${i}`, 'batch', i));

    expect(await queue.count('batch')).toBe(5);
    expect(await queue.count('batch', { enqueuedAt: T0 + 3, id: 'e3' })).toBe(3);
    expect(await queue.count('interactive')).toBe(0);
  });

  it('keeps the first place and takes the new token when the same id is enqueued again', async () => {
    await queue.enqueue(entry('a', 'batch', 1, 'first'));
    await queue.enqueue(entry('b', 'batch', 2));
    await queue.enqueue(entry('a', 'batch', 9, 'retried'));

    expect(await queue.waiting('batch', 10)).toEqual([
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
    expect(await queue.waiting('batch', 10)).toEqual([entry('a', 'batch', 1, 'retried')]);
    expect(await queue.grant('a', 'main', T0 + 6, 'retried')).toBe(true);
  });

  it('releases with a token only the record holding it: a re-queued entry outlives its old grant', async () => {
    await queue.enqueue(entry('a', 'batch', 1, 'first'));
    await queue.grant('a', 'main', T0 + 5, 'first');
    // The execution was redriven before it used its grant: it waits again with a new token.
    await queue.enqueue(entry('a', 'batch', 9, 'redriven'));

    expect(await queue.release('a', 'first')).toBe(false);
    expect(await queue.waiting('batch', 10)).toEqual([entry('a', 'batch', 1, 'redriven')]);
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
