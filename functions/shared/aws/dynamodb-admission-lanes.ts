import { BatchGetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import * as z from 'zod';
import {
  type AdmissionQueue,
  type AdmissionRecord,
  admissionItemId,
  DISPATCHER_STATE_ID,
  EMPTY_LANE,
  LANES,
  type Lane,
  type LaneCounters,
} from '../admission.js';
import { IndexUnavailableError } from '../generation-index.js';
import { type AdmissionTable, ENQUEUE_ATTEMPTS, itemSchema, recordOf } from './dynamodb-admission-items.js';
import { stateOf } from './dynamodb-dispatcher.js';
import { conditionalUpdate } from './dynamodb-documents.js';

/**
 * The attributes of a lane's counters ({@link LaneCounters}) on the dispatcher's state item
 * ({@link DISPATCHER_STATE_ID}): `interactiveTail`, `interactiveHead`, `batchTail`, `batchHead`.
 * Exported for the tests' bulk seeding.
 */
export const counterAttribute = (lane: Lane, counter: 'tail' | 'head') =>
  `${lane}${counter === 'tail' ? 'Tail' : 'Head'}`;

/** BatchGetItem takes at most 100 keys: the generations' and the state item. */
const STANDING_BATCH = 99;

/** The lanes' counters on the state item; a lane without them never had an entry. */
export function lanesOf(item: Record<string, unknown> | undefined): Record<Lane, LaneCounters> {
  const counter = (lane: Lane, which: 'tail' | 'head') => {
    const parsed = z.int().nonnegative().safeParse(item?.[counterAttribute(lane, which)]);
    return parsed.success ? parsed.data : EMPTY_LANE[which];
  };
  return Object.fromEntries(
    LANES.map((lane) => [lane, { tail: counter(lane, 'tail'), head: counter(lane, 'head') }]),
  ) as Record<Lane, LaneCounters>;
}

/** A lane's positions, as the entries and the slots move them. */
export interface LaneCounterWrites {
  /** The lane's next sequence number: one atomic add on the counters' item. */
  nextSeq(lane: Lane): Promise<number>;
  /**
   * Moves the lane's head to `next`: past a granted entry (only forward: grants go oldest first),
   * or, with `from`, past the head itself when it leaves otherwise (only while it is the head).
   * After a grant or a release it follows, which stands whatever happens here: the counters only
   * show positions, and a head this leaves behind (DynamoDB failed, or the process died in
   * between) moves on with the lane's next grant, so a failure is not passed on (false).
   */
  moveHead(lane: Lane, next: number, from?: number): Promise<boolean>;
}

/** The lanes' counters on the state item ({@link DISPATCHER_STATE_ID}), beside the dispatcher's state. */
export function laneCountersOn(table: AdmissionTable): LaneCounterWrites {
  const { documents, call, tableName } = table;
  const advanceHead = (lane: Lane, next: number, from?: number) =>
    conditionalUpdate(documents, call, {
      TableName: tableName,
      Key: { id: DISPATCHER_STATE_ID },
      UpdateExpression: 'SET #head = :next',
      // A lane without a head has head 1 (EMPTY_LANE).
      ConditionExpression:
        from === undefined
          ? 'attribute_not_exists(#head) OR #head < :next'
          : `#head = :from${from === EMPTY_LANE.head ? ' OR attribute_not_exists(#head)' : ''}`,
      ExpressionAttributeNames: { '#head': counterAttribute(lane, 'head') },
      ExpressionAttributeValues: { ':next': next, ...(from === undefined ? {} : { ':from': from }) },
    });
  return {
    async nextSeq(lane) {
      const out = await call('write', () =>
        documents.send(
          new UpdateCommand({
            TableName: tableName,
            Key: { id: DISPATCHER_STATE_ID },
            UpdateExpression: 'ADD #tail :one',
            ExpressionAttributeNames: { '#tail': counterAttribute(lane, 'tail') },
            ExpressionAttributeValues: { ':one': 1 },
            ReturnValues: 'UPDATED_NEW',
          }),
        ),
      );
      return z.int().positive().parse(out.Attributes?.[counterAttribute(lane, 'tail')]);
    },
    moveHead: (lane, next, from) => advanceHead(lane, next, from).catch(() => false),
  };
}

/** Where generations stand: their items and the state item, in batches of one BatchGetItem. */
export function standingOn(table: AdmissionTable): Pick<AdmissionQueue, 'standing'> {
  const { documents, call, tableName } = table;
  return {
    async standing(ids) {
      const records = new Map<string, AdmissionRecord>();
      let stateItem: Record<string, unknown> | undefined;
      // The state item with each batch: a list page (at most 50) is one batch.
      for (let i = 0; i === 0 || i < ids.length; i += STANDING_BATCH) {
        let keys: Record<string, unknown>[] = [
          ...ids.slice(i, i + STANDING_BATCH).map((id) => ({ id: admissionItemId(id) })),
          { id: DISPATCHER_STATE_ID },
        ];
        for (let attempt = 1; keys.length > 0; attempt++) {
          if (attempt > ENQUEUE_ATTEMPTS)
            throw new IndexUnavailableError(
              `Admission queue read left ${keys.length} keys unprocessed ${ENQUEUE_ATTEMPTS} times`,
            );
          const batch = keys;
          const out = await call('read', () =>
            documents.send(
              new BatchGetCommand({ RequestItems: { [tableName]: { Keys: batch, ConsistentRead: false } } }),
            ),
          );
          for (const item of out.Responses?.[tableName] ?? []) {
            if (item.id === DISPATCHER_STATE_ID) stateItem = item;
            else {
              const record = recordOf(itemSchema.parse(item));
              records.set(record.id, record);
            }
          }
          // What DynamoDB left unprocessed (throttled, or over 16 MB): asked again.
          keys = out.UnprocessedKeys?.[tableName]?.Keys ?? [];
        }
      }
      return { records, lanes: lanesOf(stateItem), state: stateOf(stateItem) };
    },
  };
}
