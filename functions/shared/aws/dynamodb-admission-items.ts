import { type DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import * as z from 'zod';
import { ADMISSION_KEY, type AdmissionRecord, admissionItemId, laneSchema } from '../admission.js';
import type { GuardedCall } from './dynamodb-documents.js';

/** The generations table as each part of the DynamoDB admission queue reaches it. */
export interface AdmissionTable {
  readonly documents: DynamoDBDocumentClient;
  readonly call: GuardedCall;
  readonly tableName: string;
}

/** `byQueue`'s sort key: ms zero-padded to sort as text, then the id for ties. Exported for the tests' bulk seeding. */
export const queueKeyOf = (enqueuedAt: number, id: string) => `${String(enqueuedAt).padStart(15, '0')}#${id}`;

/** A generation's admission item (id `admission#{generation id}`): waiting, or holding a slot. */
export const itemSchema = z.object({
  generationId: z.string(),
  lane: laneSchema,
  enqueuedAt: z.number(),
  expectedRunSeconds: z.number(),
  token: z.string(),
  /** Its sequence number in its lane; absent on an entry written before the lanes had counters. */
  seq: z.number().optional(),
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

export function entryOf(item: AdmissionItem) {
  return {
    id: item.generationId,
    lane: item.lane,
    enqueuedAt: item.enqueuedAt,
    expectedRunSeconds: item.expectedRunSeconds,
  };
}

/** The record of an item: waiting with its sequence number, or granted with its slot's progress. */
export function recordOf(item: AdmissionItem): AdmissionRecord {
  const entry = { ...entryOf(item), token: item.token };
  const account = item[ADMISSION_KEY.account];
  if (account === undefined || item.grantedAt === undefined)
    return { kind: 'waiting', ...entry, ...(item.seq === undefined ? {} : { seq: item.seq }) };
  return { kind: 'granted', ...entry, account, grantedAt: item.grantedAt, ...progressOf(item) };
}

/** The admission item of generation `id`, read consistently; undefined when there is none. */
export async function readItem(table: AdmissionTable, id: string): Promise<AdmissionItem | undefined> {
  const out = await table.call('read', () =>
    table.documents.send(
      new GetCommand({ TableName: table.tableName, Key: { id: admissionItemId(id) }, ConsistentRead: true }),
    ),
  );
  return out.Item ? itemSchema.parse(out.Item) : undefined;
}
