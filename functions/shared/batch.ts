import { createHash } from 'node:crypto';
import * as z from 'zod';
import { laneSchema } from './admission.js';
import type { GenerationRecord, ListPosition } from './generation-index.js';
import { stampedId } from './stamped-id.js';
import type { GenerationStatus } from './workflow-state.js';

/**
 * Batches: a request file, or a list of requests sent at once, is one object its owner can
 * follow, cancel and collect (docs/batches.md, docs/decisions/0034-batches.md).
 *
 * A batch's generations are named after it, `<batch id>-<line>`, so every writer of the index
 * knows a generation's batch from its id alone, without a read. The batch's counts live on one
 * item and move by one conditional transaction per status change of one of its generations
 * ({@link BatchIndex}): exact at every moment, O(1) writes per generation.
 */

/** The most requests one batch holds. */
export const MAX_BATCH_LINES = 10_000;

/** How a batch came: the API (or the CLI or the console through it), a request file, `npm run generate`. */
export const BATCH_SOURCES = ['api', 'cli', 'console', 'request-file', 'local'] as const;
export const batchSourceSchema = z.enum(BATCH_SOURCES);
export type BatchSource = z.infer<typeof batchSourceSchema>;

/** What a batch shows: `completed` and `cancelled` are final. */
export const BATCH_STATUSES = ['in_progress', 'completed', 'cancelling', 'cancelled'] as const;
export const batchStatusSchema = z.enum(BATCH_STATUSES);
export type BatchStatus = z.infer<typeof batchStatusSchema>;

/**
 * Where each request of a batch stands: `rejected` never became a generation; each generation is
 * in exactly one of the others at every moment.
 */
export const COUNT_KEYS = ['waiting', 'running', 'succeeded', 'partial', 'failed', 'canceled'] as const;
export type CountKey = (typeof COUNT_KEYS)[number];
export const batchCountsSchema = z.object({
  total: z.int().nonnegative(),
  rejected: z.int().nonnegative(),
  waiting: z.int(),
  running: z.int(),
  succeeded: z.int(),
  partial: z.int(),
  failed: z.int(),
  canceled: z.int(),
});
export type BatchCounts = z.infer<typeof batchCountsSchema>;

/** Counts with nothing counted yet but the lines: each generation is then added to its count. */
export const emptyCounts = (total: number, rejected: number): BatchCounts => ({
  total,
  rejected,
  ...(Object.fromEntries(COUNT_KEYS.map((key) => [key, 0])) as Record<CountKey, number>),
});

/** The count a generation is in, by its status (and, when it succeeded, whether an image failed). */
export function countOf(record: {
  readonly status: GenerationStatus;
  readonly failedImages?: readonly unknown[];
}): CountKey {
  switch (record.status) {
    case 'queued':
      return 'waiting';
    case 'running':
      return 'running';
    case 'succeeded':
      return record.failedImages && record.failedImages.length > 0 ? 'partial' : 'succeeded';
    case 'canceled':
      return 'canceled';
    default:
      return 'failed';
  }
}

/** Whether every generation of the batch has ended. */
export const allEnded = (counts: BatchCounts): boolean => counts.waiting <= 0 && counts.running <= 0;

/** The request file a batch was made from. */
export const batchFileSchema = z.object({ bucket: z.string(), key: z.string(), version: z.string() });
export type BatchFile = z.infer<typeof batchFileSchema>;

/** A batch's metadata: up to 16 string pairs, as OpenAI's batches take them. */
export const batchMetadataSchema = z
  .record(
    z.string().min(1).max(64, 'a key is at most 64 characters'),
    z.string().max(512, 'a value is at most 512 characters'),
    'must be an object of strings',
  )
  .refine((value) => Object.keys(value).length <= 16, 'at most 16 keys');
export type BatchMetadata = z.infer<typeof batchMetadataSchema>;

const iso = z.iso.datetime({ offset: true });

/** One batch as the index keeps it. */
export const batchRecordSchema = z.object({
  id: z.string(),
  status: batchStatusSchema,
  source: batchSourceSchema,
  caller: z.string().optional(),
  createdAt: iso,
  completedAt: iso.optional(),
  /** The lane its generations wait in. */
  priority: laneSchema,
  /**
   * Where its requests stand: counted from its generations' own records as they are now, each in
   * exactly one count (frozen once the batch ended).
   */
  counts: batchCountsSchema,
  metadata: batchMetadataSchema.optional(),
  /** Where `batch.completed` goes. Never shown: a webhook URL often carries a token. */
  webhookUrl: z.string().optional(),
  /** The request file it was made from. */
  file: batchFileSchema.optional(),
  /** The fingerprint of what created it: the same Idempotency-Key with another body is a conflict. */
  fingerprint: z.string(),
  /** Set while one finisher writes the results and announces the end ({@link BatchIndex.claimCompletion}). */
  completion: z.object({ owner: z.string(), claimedAt: iso }).optional(),
  /** The results file, once written: `batches/{id}/results.jsonl`. */
  resultsKey: z.string().optional(),
});
export type BatchRecord = z.infer<typeof batchRecordSchema>;
/** A batch's record without its counts. */
export const batchSummarySchema = batchRecordSchema.omit({ counts: true });

/** A batch without its counts ({@link BatchIndex.peek}). */
export type BatchSummary = z.infer<typeof batchSummarySchema>;

/** A new batch: its requests are registered afterwards, each already counted `waiting`. */
export interface NewBatch {
  readonly id: string;
  readonly createdAt: string;
  readonly source: BatchSource;
  readonly caller?: string;
  readonly priority: BatchRecord['priority'];
  /** Every line, valid or not. */
  readonly total: number;
  /** The lines that are not generations. */
  readonly rejected: number;
  readonly metadata?: BatchMetadata;
  readonly webhookUrl?: string;
  readonly file?: BatchFile;
  readonly fingerprint: string;
}

/** The same batch id (an Idempotency-Key, a request file) was created with something else. */
export class BatchConflictError extends Error {
  override readonly name = 'BatchConflictError';
}

/** Where a batch's generations stand, one page of them, in line order. */
export interface BatchLinesQuery {
  /** Only the generations in this count. */
  readonly count?: CountKey;
  readonly limit: number;
  /** Continue after this line (exclusive). */
  readonly afterLine?: number;
}
export interface BatchLinesPage {
  readonly items: readonly GenerationRecord[];
  readonly more: boolean;
}

/**
 * The port of the batches, kept beside the generations in the index: DynamoDB
 * (`functions/shared/aws/dynamodb-batches.ts`) and in memory (test/fakes), held to one contract
 * by test/contract/batch-index.test.ts.
 *
 * A batch's counts are not a counter anyone moves: every generation of a batch carries the count
 * it is in (`batchCount`, written by the index's own `register` and `advance` in the same write as
 * its status), and a batch's counts are those of its generations, counted. So a retried write, a
 * redelivery or the reconciler can never count an end twice, and no item is rewritten per end
 * (docs/decisions/0034-batches.md).
 */
export interface BatchIndex {
  /**
   * Creates the batch with every valid line counted `waiting`, once: of concurrent creations of
   * one id exactly one creates it; the others get `existing`.
   * @throws BatchConflictError when the id exists with another fingerprint
   */
  create(batch: NewBatch): Promise<{ readonly existing?: BatchRecord }>;
  get(id: string): Promise<BatchRecord | undefined>;
  /**
   * The batch without its live counts (one read, whatever its size): its status, settings and
   * results key. What a check of its status or existence needs.
   */
  peek(id: string): Promise<BatchSummary | undefined>;
  /** Newest first, as generations are listed. */
  list(query: { readonly limit: number; readonly after?: ListPosition }): Promise<{
    readonly items: readonly BatchRecord[];
    readonly more: boolean;
  }>;
  /** Its generations in line order, optionally of one count. */
  lines(batchId: string, query: BatchLinesQuery): Promise<BatchLinesPage>;
  /**
   * Whether every request of the batch is a generation that ended, read strongly (the records of
   * those the counts still show waiting or running are read themselves): what decides that a
   * batch is complete.
   */
  allEnded(batchId: string): Promise<boolean>;
  /** `in_progress` → `cancelling`; the batch as it stands after (undefined: none). */
  markCancelling(id: string): Promise<BatchSummary | undefined>;
  /**
   * Takes the batch's completion for `owner` when all its generations ended and nobody holds it
   * (or its holder's claim is older than `staleBefore`: a finisher that died). The batch, or
   * undefined when it is not this finisher's to complete.
   */
  claimCompletion(
    id: string,
    owner: string,
    now: string,
    staleBefore: string,
  ): Promise<BatchRecord | undefined>;
  /**
   * Ends the batch: `completed` (or `cancelled` when it was cancelling), with `completedAt`, its
   * results key and its final counts, only while `owner` holds the claim. False when it does not
   * any more.
   */
  complete(
    id: string,
    owner: string,
    end: {
      readonly status: 'completed' | 'cancelled';
      readonly at: string;
      readonly resultsKey: string;
      readonly counts: BatchCounts;
    },
  ): Promise<boolean>;
}

/** The item id of a batch in the generations table: `#` never occurs in a generation id. */
export const batchItemId = (id: string) => `batch#${id}`;
/** The `byCreated` partition of batches (generations have theirs). */
export const BATCH_LIST_PARTITION = 'batch';
/**
 * The index of batches' generations, keys only: partition `batchCount` (`<batch id>#<count>`),
 * sort `batchLine`. A count is one Query with `Select: COUNT`; a page of lines merges six.
 */
export const BATCH_INDEX = { name: 'byBatch', partition: 'batchCount', sort: 'batchLine' } as const;
/** A generation's `batchCount`: its batch and the count it is in. */
export const batchCountKey = (batchId: string, count: CountKey) => `${batchId}#${count}`;

/** A batch id the API makes: `batch-<UTC stamp>-<8 hex>`. */
export const newBatchId = (now: number): string => stampedId('batch', now, 4);

/** The batch id of an Idempotency-Key: `batch-k<hash>`. */
export const idempotentBatchId = (key: string): string =>
  `batch-k${createHash('sha256').update(key).digest('base64url').slice(0, 32)}`;

/** A request file's batch: the same for the same bucket, key and version, so a redelivery finds it. */
export function requestFileBatchId(file: BatchFile): string {
  const digest = createHash('sha256')
    .update(`${file.bucket}\n${file.key}\n${file.version}`)
    .digest('base64url');
  return `file-${digest.slice(0, 40)}`;
}

/** The generation of line `line` (from 1) of a batch. */
export const batchLineId = (batchId: string, line: number): string => `${batchId}-${line}`;

const LINE_ID = /^((?:batch|file)-[A-Za-z0-9_-]+)-(\d{1,7})$/;

/** The batch and line of a generation named after its batch; undefined for any other. */
export function batchOfId(id: string): { readonly batchId: string; readonly line: number } | undefined {
  const match = LINE_ID.exec(id);
  if (!match) return undefined;
  return { batchId: match[1] as string, line: Number(match[2]) };
}

/** A batch id as the routes take it. */
export const batchIdSchema = z
  .string()
  .regex(/^(?:batch|file)-[A-Za-z0-9_-]{1,70}$/, 'must be a batch id ("batch-…" or "file-…")');

/** One line of `batches/{id}/results.jsonl`. */
export interface ResultLine {
  readonly line: number;
  readonly id?: string;
  readonly status: GenerationStatus | 'partial' | 'rejected';
  readonly images?: readonly string[];
  readonly seeds?: readonly number[];
  readonly error?: { readonly type: string; readonly message: string };
}

/** Where a batch's results file is kept. */
export const resultsKeyOf = (batchId: string) => `batches/${batchId}/results.jsonl`;
/** Where the lines a batch rejected are kept (line and reason), for its results. */
export const rejectedKeyOf = (batchId: string) => `batches/${batchId}/rejected.json`;

/** A generation of a batch as a results line. */
export function resultLineOf(record: GenerationRecord, line: number): ResultLine {
  const count = countOf(record);
  const status = count === 'partial' ? 'partial' : record.status;
  return {
    line,
    id: record.id,
    status,
    ...(record.images?.length
      ? {
          images: record.images.map((image) => image.key),
          seeds: record.images.map((image) => image.seed).filter((seed) => seed !== undefined),
        }
      : {}),
    ...(record.error ? { error: { type: record.error.type, message: record.error.message } } : {}),
  };
}
