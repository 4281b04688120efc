import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { AdmissionQueue } from '../admission.js';
import { admissionEntriesOn } from './dynamodb-admission-entries.js';
import type { AdmissionTable } from './dynamodb-admission-items.js';
import { laneCountersOn, standingOn } from './dynamodb-admission-lanes.js';
import { admissionSlotsOn } from './dynamodb-admission-slots.js';
import { dispatcherStateOn } from './dynamodb-dispatcher.js';
import { documentClientOf, guardedCalls } from './dynamodb-documents.js';
import { recentTasksOn } from './dynamodb-recent-tasks.js';

export { queueKeyOf } from './dynamodb-admission-items.js';
export { counterAttribute } from './dynamodb-admission-lanes.js';
export { createDynamoDispatcherLease } from './dynamodb-dispatcher.js';

/**
 * The DynamoDB adapter of {@link AdmissionQueue}: one item per generation in the generations
 * table (id `admission#{generation id}`, which no generation id can take), found through two
 * sparse indexes: `byQueue` (lane, then its fair order: round, enqueue time) while it waits,
 * `bySlot` (account) while it holds a slot. Granting is one conditional update, so an entry is granted once whoever races.
 *
 * Its parts, each over the same table: the waiting entries (`dynamodb-admission-entries.ts`), the
 * slots (`…-slots.ts`), the lanes' counters and where entries stand (`…-lanes.ts`), the
 * account's recent tasks (`dynamodb-recent-tasks.ts`) and the dispatcher's state
 * (`dynamodb-dispatcher.ts`, beside its lease). The item's shape: `dynamodb-admission-items.ts`.
 */
export function createDynamoAdmissionQueue(client: DynamoDBClient, tableName: string): AdmissionQueue {
  const table: AdmissionTable = {
    documents: documentClientOf(client),
    call: guardedCalls('Admission queue'),
    tableName,
  };
  const lanes = laneCountersOn(table);
  return {
    ...admissionEntriesOn(table, lanes),
    ...standingOn(table),
    ...admissionSlotsOn(table, lanes),
    ...recentTasksOn(table),
    ...dispatcherStateOn(table),
  };
}
