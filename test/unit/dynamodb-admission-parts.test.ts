import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import {
  type BatchGetCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import {
  ADMISSION_KEY,
  admissionItemId,
  DISPATCHER_STATE_ID,
  EMPTY_LANE,
  type WaitingEntry,
  waitingIn,
} from '../../functions/shared/admission.js';
import { createDynamoAdmissionQueue } from '../../functions/shared/aws/dynamodb-admission.js';
import { admissionEntriesOn } from '../../functions/shared/aws/dynamodb-admission-entries.js';
import { type AdmissionTable, recordOf } from '../../functions/shared/aws/dynamodb-admission-items.js';
import { lanesOf, standingOn } from '../../functions/shared/aws/dynamodb-admission-lanes.js';
import { stateOf } from '../../functions/shared/aws/dynamodb-dispatcher.js';
import { guardedCalls } from '../../functions/shared/aws/dynamodb-documents.js';
import { recentTasksOn } from '../../functions/shared/aws/dynamodb-recent-tasks.js';
import { IndexUnavailableError } from '../../functions/shared/generation-index.js';
import { useLocalTables } from '../support/local-tables.js';

/**
 * The parts of the DynamoDB admission queue, each on what it alone decides; what they do together
 * is held to the queue's contract (test/contract/admission-queue.test.ts).
 */

const tables = useLocalTables('admission-parts');

const T0 = Date.UTC(2026, 10, 30, 12, 0, 0);
const entry = (id: string, at: number, token = `token-${id}`): WaitingEntry => ({
  id,
  lane: 'batch',
  enqueuedAt: T0 + at,
  expectedRunSeconds: 20,
  token,
});

/** A table whose every call `answer` makes, each command kept in `sent`. */
function scriptedTable(answer: (command: object) => unknown) {
  const sent: object[] = [];
  const documents = {
    send: async (command: object) => {
      sent.push(command);
      return answer(command);
    },
  } as unknown as DynamoDBDocumentClient;
  const table: AdmissionTable = { documents, call: guardedCalls('Admission queue'), tableName: 't' };
  return { table, sent };
}

const conditionFailed = () =>
  new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata: {} });

describe('the admission item', () => {
  const item = {
    generationId: 'a',
    lane: 'batch',
    enqueuedAt: T0,
    expectedRunSeconds: 20,
    token: 't',
  } as const;

  it('reads as waiting until it has both an account and a grant time, with its order when it has one', () => {
    expect(recordOf(item)).toEqual({
      kind: 'waiting',
      id: 'a',
      lane: 'batch',
      enqueuedAt: T0,
      expectedRunSeconds: 20,
      token: 't',
    });
    // A lane number without a round is from before the fair order: no order.
    expect(recordOf({ ...item, seq: 4 })).not.toHaveProperty('order');
    expect(recordOf({ ...item, seq: 4, round: 9, solo: 2, [ADMISSION_KEY.account]: 'main' })).toMatchObject({
      kind: 'waiting',
      order: { round: 9, arrival: 4, solo: 2 },
    });
    expect(recordOf({ ...item, [ADMISSION_KEY.account]: 'main', grantedAt: T0 + 1, taskId: 'x' })).toEqual({
      kind: 'granted',
      id: 'a',
      lane: 'batch',
      enqueuedAt: T0,
      expectedRunSeconds: 20,
      token: 't',
      account: 'main',
      grantedAt: T0 + 1,
      taskId: 'x',
    });
  });
});

describe('the state item', () => {
  it('reads missing or malformed counters as an empty lane, and a malformed state as the initial one', () => {
    const item = {
      batchTail: 7,
      batchHead: 3,
      batchSoloTail: 2,
      interactiveTail: -1,
      interactiveHead: 'x',
      interactiveStreak: 1.5,
    };

    expect(lanesOf(item)).toEqual({
      batch: { tail: 7, head: 3, soloTail: 2, soloHead: 1 },
      interactive: EMPTY_LANE,
    });
    expect(lanesOf(undefined)).toEqual({ batch: EMPTY_LANE, interactive: EMPTY_LANE });
    expect(
      stateOf({
        ...item,
        runnersFreeAt: { main: 'soon' },
        rounds: { batch: 'x' },
        pace: { main: { freed: -1, overMs: 'long' } },
      }),
    ).toEqual({
      interactiveStreak: 0,
    });
    expect(
      stateOf({
        interactiveStreak: 2,
        runnersFreeAt: { main: T0 },
        rounds: { batch: { clock: 4, width: 2, lines: 1 } },
        pace: { main: { freed: 3.5, overMs: 70_000, fullSince: T0 }, other: { freed: 1, overMs: 9000 } },
      }),
    ).toEqual({
      interactiveStreak: 2,
      runnersFreeAt: { main: T0 },
      rounds: { batch: { clock: 4, width: 2, lines: 1 } },
      pace: { main: { freed: 3.5, overMs: 70_000, fullSince: T0 }, other: { freed: 1, overMs: 9000 } },
    });
  });

  it('forgets the runners, the rounds and the pace when the state is written without them', async () => {
    const queue = createDynamoAdmissionQueue(tables.client(), await tables.fresh());
    await queue.writeState({
      interactiveStreak: 1,
      runnersFreeAt: { main: T0 },
      rounds: { batch: { clock: 3, width: 1, lines: 1 } },
      pace: { main: { freed: 2, overMs: 40_000, fullSince: T0 } },
    });
    expect((await queue.readState()).rounds).toEqual({ batch: { clock: 3, width: 1, lines: 1 } });
    expect((await queue.readState()).pace).toEqual({ main: { freed: 2, overMs: 40_000, fullSince: T0 } });

    await queue.writeState({ interactiveStreak: 2 });

    expect(await queue.readState()).toEqual({ interactiveStreak: 2 });
  });
});

describe('the lanes’ counters', () => {
  it('count every grant as a leave, in whatever order the grants go', async () => {
    const queue = createDynamoAdmissionQueue(tables.client(), await tables.fresh());
    for (let i = 0; i < 5; i++) await queue.enqueue(entry(`b${i}`, i));
    await queue.enqueue({ ...entry('batch-x-1', 5) });

    await queue.grant('b2', 'main', T0 + 10);
    await queue.grant('batch-x-1', 'main', T0 + 11);

    // And the expected runs of the four left waiting, 20 s each.
    expect((await queue.standing([])).lanes.batch).toEqual({
      tail: 6,
      head: 3,
      soloTail: 5,
      soloHead: 2,
      runMs: 80_000,
    });
  });

  it('leave a grant standing when its count cannot be written: the lane shows one more', async () => {
    const client = tables.client();
    const queue = createDynamoAdmissionQueue(client, await tables.fresh());
    for (let i = 0; i < 3; i++) await queue.enqueue(entry(`b${i}`, i));
    let failures = 0;
    client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'UpdateItemCommand' && JSON.stringify(args.input).includes(':first')) {
          failures++;
          throw new Error('throttled');
        }
        return next(args);
      },
      { step: 'initialize', name: 'count-fails' },
    );
    try {
      expect(await queue.grant('b0', 'main', T0 + 10)).toBe(true);
    } finally {
      client.middlewareStack.remove('count-fails');
    }

    expect(failures).toBe(1);
    expect(await queue.get('b0')).toMatchObject({ kind: 'granted', account: 'main' });
    expect(waitingIn((await queue.standing([])).lanes.batch)).toBe(3);
    await queue.grant('b1', 'main', T0 + 11);
    expect(waitingIn((await queue.standing([])).lanes.batch)).toBe(2);
  });
});

describe('where entries stand', () => {
  it('reads the state item with every batch of at most 100 keys, and with no ids at all', async () => {
    const { table, sent } = scriptedTable(() => ({ Responses: { t: [] } }));
    const ids = Array.from({ length: 150 }, (_, i) => `g${i}`);

    await standingOn(table).standing(ids);
    await standingOn(table).standing([]);

    const keys = sent.map((command) => (command as BatchGetCommand).input.RequestItems?.t?.Keys ?? []);
    expect(keys.map((batch) => batch.length)).toEqual([100, 52, 1]);
    for (const batch of keys) expect(batch.at(-1)).toEqual({ id: DISPATCHER_STATE_ID });
    expect(keys.flat().filter((key) => key.id !== DISPATCHER_STATE_ID)).toHaveLength(150);
  });

  it('asks again for the keys DynamoDB left unprocessed, and gives up after five tries', async () => {
    const item = {
      id: admissionItemId('a'),
      generationId: 'a',
      lane: 'batch',
      enqueuedAt: T0,
      expectedRunSeconds: 20,
      token: 't',
      seq: 2,
      round: 3,
    };
    let calls = 0;
    const once = scriptedTable((command) => {
      const keys = (command as BatchGetCommand).input.RequestItems?.t?.Keys ?? [];
      calls++;
      // First only the state item; the generation's key is left for later.
      return calls === 1
        ? {
            Responses: { t: [{ id: DISPATCHER_STATE_ID, batchTail: 2 }] },
            UnprocessedKeys: { t: { Keys: keys.slice(0, 1) } },
          }
        : { Responses: { t: [item] } };
    });
    const standing = await standingOn(once.table).standing(['a']);
    // Its place: 2 rounds ahead of the clock, but only 1 other waits.
    expect(standing.records.get('a')).toMatchObject({ kind: 'waiting', seq: 2 });
    expect(standing.lanes.batch).toEqual({ ...EMPTY_LANE, tail: 2 });
    expect(once.sent).toHaveLength(2);

    const never = scriptedTable((command) => ({
      Responses: { t: [] },
      UnprocessedKeys: { t: { Keys: (command as BatchGetCommand).input.RequestItems?.t?.Keys } },
    }));
    await expect(standingOn(never.table).standing(['a'])).rejects.toThrow(IndexUnavailableError);
    expect(never.sent).toHaveLength(5);
  });
});

describe('the entries’ enqueue', () => {
  it('takes one number for an entry whose create keeps losing races, however often it reads it absent', async () => {
    let puts = 0;
    const { table } = scriptedTable((command) => {
      if (command instanceof GetCommand)
        return puts < 2 ? {} : { Item: { ...entry('a', 0), generationId: 'a' } };
      if (command instanceof PutCommand) {
        puts++;
        throw conditionFailed();
      }
      throw new Error(`unexpected ${command.constructor.name}`);
    });
    const counts = { taken: 0, left: 0 };
    const lanes = {
      take: async () => ({ arrival: ++counts.taken, solo: counts.taken, clock: 0 }),
      leave: async () => {
        counts.left++;
        return true;
      },
    };

    await admissionEntriesOn(table, lanes).enqueue(entry('a', 0));

    // The number it took and did not use counts as having left.
    expect([puts, counts.taken, counts.left]).toEqual([2, 1, 1]);
  });

  it('gives up when the entry changed before each of its five writes', async () => {
    let reads = 0;
    const { table, sent } = scriptedTable((command) => {
      if (command instanceof GetCommand)
        return { Item: { ...entry('a', 0, `other-${++reads}`), generationId: 'a' } };
      if (command instanceof UpdateCommand) throw conditionFailed();
      throw new Error(`unexpected ${command.constructor.name}`);
    });

    await expect(
      admissionEntriesOn(table, {
        take: async () => ({ arrival: 1, clock: 0 }),
        leave: async () => true,
      }).enqueue(entry('a', 0, 'new')),
    ).rejects.toThrow('the entry changed on each of 5 attempts');
    expect(sent.filter((command) => command instanceof UpdateCommand)).toHaveLength(5);
  });
});

describe('the account’s recent tasks', () => {
  it('records every one of several first tasks of an account at once', async () => {
    const queue = createDynamoAdmissionQueue(tables.client(), await tables.fresh());

    await Promise.all(['t1', 't2', 't3', 't4'].map((task, i) => queue.recordTask('new', task, T0 + i)));

    expect([...(await queue.recentTasks('new', 0))].sort()).toEqual(['t1', 't2', 't3', 't4']);
  });

  it('prunes in expressions of at most 100 task names each, every old task and only those', async () => {
    const tasks = Object.fromEntries(Array.from({ length: 250 }, (_, i) => [`old-${i}`, T0 + i]));
    const { table, sent } = scriptedTable((command) =>
      command instanceof GetCommand ? { Item: { tasks: { ...tasks, kept: T0 + 1000 } } } : {},
    );

    await recentTasksOn(table).pruneTasks('main', T0 + 1000);

    const removed = sent
      .filter((command) => command instanceof UpdateCommand)
      .map((command) =>
        Object.values(command.input.ExpressionAttributeNames ?? {}).filter((name) => name !== 'tasks'),
      );
    expect(removed.map((names) => names.length)).toEqual([100, 100, 50]);
    expect(removed.flat().sort()).toEqual(Object.keys(tasks).sort());
  });
});
