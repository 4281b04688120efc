import { BatchGetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import * as z from 'zod';
import {
  type AdmissionQueue,
  type AdmissionRecord,
  admissionItemId,
  DISPATCHER_STATE_ID,
  EMPTY_LANE,
  entriesAhead,
  LANES,
  type Lane,
  type LaneCounters,
} from '../admission.js';
import { IndexUnavailableError } from '../generation-index.js';
import { type AdmissionTable, ENQUEUE_ATTEMPTS, itemSchema, recordOf } from './dynamodb-admission-items.js';
import { stateOf } from './dynamodb-dispatcher.js';

type Counter = keyof LaneCounters;
const COUNTERS = ['tail', 'head', 'soloTail', 'soloHead'] as const satisfies readonly Counter[];
type Count = (typeof COUNTERS)[number];

/**
 * The attributes of a lane's counters ({@link LaneCounters}) on the dispatcher's state item
 * ({@link DISPATCHER_STATE_ID}): `batchTail`, `batchHead`, `batchSoloTail`, `batchSoloHead`, and
 * the same for `interactive`. Exported for the tests' bulk seeding.
 */
export const counterAttribute = (lane: Lane, counter: Counter) =>
  `${lane}${counter.charAt(0).toUpperCase()}${counter.slice(1)}`;
/** The attribute of a lane's summed expected runs ({@link LaneCounters.runMs}): `batchRunMs`, `interactiveRunMs`. */
const runsAttribute = (lane: Lane) => counterAttribute(lane, 'runMs');

/** BatchGetItem takes at most 100 keys: the generations' and the state item. */
const STANDING_BATCH = 99;

/** The lanes' counters on the state item; a counter missing (or malformed) is an empty lane's. */
export function lanesOf(item: Record<string, unknown> | undefined): Record<Lane, LaneCounters> {
  const counter = (lane: Lane, which: Count) => {
    const parsed = z.int().nonnegative().safeParse(item?.[counterAttribute(lane, which)]);
    return parsed.success ? parsed.data : EMPTY_LANE[which];
  };
  const countersOf = (lane: Lane): LaneCounters => {
    const runs = z.number().safeParse(item?.[runsAttribute(lane)]);
    return {
      ...(Object.fromEntries(COUNTERS.map((which) => [which, counter(lane, which)])) as Record<
        Count,
        number
      >),
      ...(runs.success ? { runMs: runs.data } : {}),
    };
  };
  return Object.fromEntries(LANES.map((lane) => [lane, countersOf(lane)])) as Record<Lane, LaneCounters>;
}

/** What a new entry takes from its lane: its numbers, and the lane's clock for its round. */
export interface Taken {
  readonly arrival: number;
  readonly solo?: number;
  readonly clock: number;
}

/** A lane's counts, as the entries come and leave. */
export interface LaneCounterWrites {
  /**
   * A new entry's numbers in its lane (and among its singles, when `solo`), with the lane's
   * clock: one atomic add on the counters' item, which brings the item back. Its expected run
   * (`runMs`) is added to the lane's in the same write.
   */
  take(lane: Lane, solo: boolean, runMs?: number): Promise<Taken>;
  /**
   * Counts `count` entries more as having left the lane (a grant, a waiting entry released, a
   * number a create did not use), or, with −1, one back in it (a slot given back unused), with
   * its expected run (`runMs`) taken off the lane's or put back. After the write it follows,
   * which stands whatever happens here: the counters only show positions, so a failure is not
   * passed on (false); the lane's length is then one off (docs/admission.md).
   */
  leave(lane: Lane, solo: boolean, count?: 1 | -1, runMs?: number): Promise<boolean>;
}

/** The lanes' counters on the state item ({@link DISPATCHER_STATE_ID}), beside the dispatcher's state. */
export function laneCountersOn(table: AdmissionTable): LaneCounterWrites {
  const { documents, call, tableName } = table;
  const names = (lane: Lane, solo: boolean, counters: readonly [Count, Count]) => ({
    '#all': counterAttribute(lane, counters[0]),
    ...(solo ? { '#solo': counterAttribute(lane, counters[1]) } : {}),
  });
  return {
    async take(lane, solo, runMs = 0) {
      const out = await call('write', () =>
        documents.send(
          new UpdateCommand({
            TableName: tableName,
            Key: { id: DISPATCHER_STATE_ID },
            UpdateExpression: `ADD #all :one, #runs :runs${solo ? ', #solo :one' : ''}`,
            ExpressionAttributeNames: {
              ...names(lane, solo, ['tail', 'soloTail']),
              '#runs': runsAttribute(lane),
            },
            ExpressionAttributeValues: { ':one': 1, ':runs': runMs },
            ReturnValues: 'ALL_NEW',
          }),
        ),
      );
      const item = out.Attributes;
      const number = (which: Counter) => z.int().positive().parse(item?.[counterAttribute(lane, which)]);
      return {
        arrival: number('tail'),
        ...(solo ? { solo: number('soloTail') } : {}),
        clock: stateOf(item).rounds?.[lane]?.clock ?? 0,
      };
    },

    async leave(lane, solo, count = 1, runMs = 0) {
      // A lane without a head has head 1 (EMPTY_LANE).
      const counted = (name: string) => `${name} = if_not_exists(${name}, :first) + :count`;
      return call('write', () =>
        documents.send(
          new UpdateCommand({
            TableName: tableName,
            Key: { id: DISPATCHER_STATE_ID },
            UpdateExpression: `SET ${counted('#all')}${solo ? `, ${counted('#solo')}` : ''} ADD #runs :runs`,
            ExpressionAttributeNames: {
              ...names(lane, solo, ['head', 'soloHead']),
              '#runs': runsAttribute(lane),
            },
            ExpressionAttributeValues: {
              ':first': EMPTY_LANE.head,
              ':count': count,
              ':runs': -count * runMs,
            },
          }),
        ),
      ).then(
        () => true,
        () => false,
      );
    },
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
      const lanes = lanesOf(stateItem);
      const state = stateOf(stateItem);
      // A waiting entry's place, numbered as its lane's counters number them (`aheadIn`).
      for (const [id, record] of records) {
        if (record.kind !== 'waiting' || !record.order) continue;
        const lane = lanes[record.lane];
        records.set(id, {
          ...record,
          seq: lane.head + entriesAhead(record.order, lane, state.rounds?.[record.lane]),
        });
      }
      return { records, lanes, state };
    },
  };
}
