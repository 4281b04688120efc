import { type DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import * as z from 'zod';
import {
  ADMISSION_KEY,
  type AdmissionRecord,
  admissionItemId,
  laneSchema,
  type QueueOrder,
  runMsOf,
} from '../admission.js';
import type { GuardedCall } from './dynamodb-documents.js';

/** The generations table as each part of the DynamoDB admission queue reaches it. */
export interface AdmissionTable {
  readonly documents: DynamoDBDocumentClient;
  readonly call: GuardedCall;
  readonly tableName: string;
}

const padded = (value: number) => String(value).padStart(15, '0');

/**
 * `byQueue`'s sort key, sorting as text as {@link compareInLane} orders: `r`, the round, then the
 * enqueue time (both zero-padded), then the id. An entry older than the fair order keeps its key
 * (`{enqueuedAt}#{id}`: digits sort before `r`, so it goes first). Exported for the tests' bulk seeding.
 */
export const queueKeyOf = (order: Pick<QueueOrder, 'round'> | undefined, enqueuedAt: number, id: string) =>
  order === undefined ? `${padded(enqueuedAt)}#${id}` : `r${padded(order.round)}#${padded(enqueuedAt)}#${id}`;

/** A generation's admission item (id `admission#{generation id}`): waiting, or holding a slot. */
export const itemSchema = z.object({
  generationId: z.string(),
  lane: laneSchema,
  enqueuedAt: z.number(),
  expectedRunSeconds: z.number(),
  token: z.string(),
  /** Its number among its lane's entries ({@link QueueOrder.arrival}); absent on an entry written before the lanes had counters. */
  seq: z.number().optional(),
  /** Its round in the fair order; absent on an entry written before it. */
  round: z.number().optional(),
  /** Outside any batch: its number among its lane's singles. */
  solo: z.number().optional(),
  [ADMISSION_KEY.account]: z.string().optional(),
  grantedAt: z.number().optional(),
  submittedAt: z.number().optional(),
  startedAt: z.number().optional(),
  submitAttemptAt: z.number().optional(),
  submitSeed: z.number().optional(),
  taskId: z.string().optional(),
});

export type AdmissionItem = z.infer<typeof itemSchema>;

/** The slot's progress fields (`note`): an entry that waits again has none. */
export const PROGRESS_FIELDS = [
  'submittedAt',
  'startedAt',
  'submitAttemptAt',
  'submitSeed',
  'taskId',
] as const;

/**
 * Reads, then one conditional write, a few times over when another write came in between; and the
 * tries of a BatchGetItem whose keys DynamoDB left unprocessed.
 */
export const ENQUEUE_ATTEMPTS = 5;

/** The slot fields of an item, those present. */
export const progressOf = (item: AdmissionItem) =>
  Object.fromEntries(
    PROGRESS_FIELDS.filter((field) => item[field] !== undefined).map((field) => [field, item[field]]),
  );

/** The item's place in the fair order: with a round (a lane number alone is from before it). */
export function orderOf(item: AdmissionItem): QueueOrder | undefined {
  if (item.round === undefined || item.seq === undefined) return undefined;
  return { round: item.round, arrival: item.seq, ...(item.solo === undefined ? {} : { solo: item.solo }) };
}

export function entryOf(item: AdmissionItem) {
  const order = orderOf(item);
  return {
    id: item.generationId,
    lane: item.lane,
    enqueuedAt: item.enqueuedAt,
    expectedRunSeconds: item.expectedRunSeconds,
    ...(order ? { order } : {}),
  };
}

/** The record of an item: waiting (its place is the standing's to set), or granted with its slot's progress. */
export function recordOf(item: AdmissionItem): AdmissionRecord {
  const entry = { ...entryOf(item), token: item.token };
  const account = item[ADMISSION_KEY.account];
  if (account === undefined || item.grantedAt === undefined) return { kind: 'waiting', ...entry };
  return { kind: 'granted', ...entry, account, grantedAt: item.grantedAt, ...progressOf(item) };
}

/** Whether the item is counted by its lane's counters, and among its singles, with its expected run (ms). */
export const countedOf = (item: AdmissionItem) =>
  item.seq === undefined
    ? undefined
    : { lane: item.lane, solo: item.solo !== undefined, runMs: runMsOf(item.expectedRunSeconds) };

/** The admission item of generation `id`, read consistently; undefined when there is none. */
export async function readItem(table: AdmissionTable, id: string): Promise<AdmissionItem | undefined> {
  const out = await table.call('read', () =>
    table.documents.send(
      new GetCommand({ TableName: table.tableName, Key: { id: admissionItemId(id) }, ConsistentRead: true }),
    ),
  );
  return out.Item ? itemSchema.parse(out.Item) : undefined;
}
