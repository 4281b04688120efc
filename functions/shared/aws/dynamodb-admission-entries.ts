import { PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import {
  ADMISSION_INDEX,
  ADMISSION_KEY,
  type AdmissionQueue,
  admissionItemId,
  type QueueOrder,
  roundOf,
  runMsOf,
  type WaitingEntry,
} from '../admission.js';
import { batchOfId } from '../batch.js';
import { IndexUnavailableError } from '../generation-index.js';
import {
  type AdmissionItem,
  type AdmissionTable,
  countedOf,
  ENQUEUE_ATTEMPTS,
  entryOf,
  itemSchema,
  orderOf,
  PROGRESS_FIELDS,
  queueKeyOf,
  readItem,
  recordOf,
} from './dynamodb-admission-items.js';
import type { LaneCounterWrites, Taken } from './dynamodb-admission-lanes.js';
import { applied, conditionalUpdate, queryAll } from './dynamodb-documents.js';

/** The waiting entries: their enqueue (created, or put back in their lane), the lanes' reads, one record. */
export function admissionEntriesOn(
  table: AdmissionTable,
  lanes: LaneCounterWrites,
): Pick<AdmissionQueue, 'enqueue' | 'waiting' | 'count' | 'get'> {
  const { documents, call, tableName } = table;
  const byLane = (lane: string) => ({
    TableName: tableName,
    IndexName: ADMISSION_INDEX.byQueue,
    KeyConditionExpression: '#lane = :lane',
    ExpressionAttributeNames: { '#lane': ADMISSION_KEY.lane },
    ExpressionAttributeValues: { ':lane': lane },
  });
  return {
    async enqueue(entry) {
      const line = batchOfId(entry.id)?.line;
      const solo = line === undefined;
      const runMs = runMsOf(entry.expectedRunSeconds);
      /** Taken once, when the entry is first found absent; unused when its create loses a race. */
      let taken: Taken | undefined;
      const done = async () => {
        // Numbers this enqueue took but no entry holds: counted as having left.
        if (taken) await lanes.leave(entry.lane, solo, 1, runMs);
      };
      for (let attempt = 0; attempt < ENQUEUE_ATTEMPTS; attempt++) {
        const existing = await readItem(table, entry.id);
        if (!existing) {
          taken ??= await lanes.take(entry.lane, solo, runMs);
          const order: QueueOrder = {
            round: roundOf(taken.clock, line),
            arrival: taken.arrival,
            ...(taken.solo === undefined ? {} : { solo: taken.solo }),
          };
          if (await createEntry(table, entry, order)) return;
          continue;
        }
        // The same Admit again, or a stale one: its execution already attempted a submit.
        const submitted = existing.submitAttemptAt !== undefined || existing.submittedAt !== undefined;
        if (existing.token === entry.token || submitted) return done();
        if (await requeueEntry(table, entry, existing)) {
          // A slot given back unused is in its lane again.
          const counted = countedOf(existing);
          if (counted && existing[ADMISSION_KEY.account] !== undefined)
            await lanes.leave(counted.lane, counted.solo, -1, counted.runMs);
          return done();
        }
      }
      await done();
      throw new IndexUnavailableError(
        `Admission queue enqueue of ${entry.id} failed: the entry changed on each of ${ENQUEUE_ATTEMPTS} attempts`,
      );
    },

    async waiting(lane, limit) {
      const out = await call('query', () =>
        documents.send(new QueryCommand({ ...byLane(lane), ScanIndexForward: true, Limit: limit })),
      );
      return (out.Items ?? []).map((item) => {
        const parsed = itemSchema.parse(item);
        return { ...entryOf(parsed), token: parsed.token };
      });
    },

    async count(lane) {
      const { count } = await queryAll(documents, call, { ...byLane(lane), Select: 'COUNT' });
      return count;
    },

    async get(id) {
      const item = await readItem(table, id);
      return item ? recordOf(item) : undefined;
    },
  };
}

/** Creates the entry only if still absent: a racing enqueue, grant or note is never overwritten. */
function createEntry(table: AdmissionTable, entry: WaitingEntry, order: QueueOrder): Promise<boolean> {
  return applied(() =>
    table.call('write', () =>
      table.documents.send(
        new PutCommand({
          TableName: table.tableName,
          Item: {
            id: admissionItemId(entry.id),
            generationId: entry.id,
            lane: entry.lane,
            enqueuedAt: entry.enqueuedAt,
            expectedRunSeconds: entry.expectedRunSeconds,
            token: entry.token,
            seq: order.arrival,
            round: order.round,
            ...(order.solo === undefined ? {} : { solo: order.solo }),
            [ADMISSION_KEY.lane]: entry.lane,
            [ADMISSION_KEY.queueKey]: queueKeyOf(order, entry.enqueuedAt, entry.id),
          },
          ConditionExpression: 'attribute_not_exists(#id)',
          ExpressionAttributeNames: { '#id': 'id' },
        }),
      ),
    ),
  );
}

/**
 * Puts the entry back to wait at its first place (its round and enqueue time) with the new token;
 * a slot not yet used is given back. Conditional on the record as read: a grant or a note in
 * between makes it read again (false).
 */
function requeueEntry(table: AdmissionTable, entry: WaitingEntry, existing: AdmissionItem): Promise<boolean> {
  return conditionalUpdate(table.documents, table.call, {
    TableName: table.tableName,
    Key: { id: admissionItemId(entry.id) },
    UpdateExpression: `SET #token = :token, #laneField = :lane, #expected = :expected, #lane = :lane, #queueKey = :queueKey REMOVE #account, #slotKey, #grantedAt, ${PROGRESS_FIELDS.map((field) => `#${field}`).join(', ')}`,
    ConditionExpression:
      '#token = :read AND #enqueuedAt = :enqueuedAt AND attribute_not_exists(#submitAttemptAt) AND attribute_not_exists(#submittedAt)',
    ExpressionAttributeNames: {
      '#token': 'token',
      '#laneField': 'lane',
      '#expected': 'expectedRunSeconds',
      '#lane': ADMISSION_KEY.lane,
      '#queueKey': ADMISSION_KEY.queueKey,
      '#account': ADMISSION_KEY.account,
      '#slotKey': ADMISSION_KEY.slotKey,
      '#grantedAt': 'grantedAt',
      '#enqueuedAt': 'enqueuedAt',
      ...Object.fromEntries(PROGRESS_FIELDS.map((field) => [`#${field}`, field])),
    },
    ExpressionAttributeValues: {
      ':token': entry.token,
      ':lane': entry.lane,
      ':expected': entry.expectedRunSeconds,
      ':queueKey': queueKeyOf(orderOf(existing), existing.enqueuedAt, entry.id),
      ':read': existing.token,
      ':enqueuedAt': existing.enqueuedAt,
    },
  });
}
