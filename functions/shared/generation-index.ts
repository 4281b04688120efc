import { createHash } from 'node:crypto';
import * as z from 'zod';
import { canonicalJson } from './canonical-json.js';
import { generationStatusSchema, persistResultSchema } from './workflow-state.js';

/**
 * The generations index: one record per generation, the system of record for what a generation
 * looks like from outside (the API reads only this). Step Functions stays the engine; the
 * workflow's functions, the API and the reconciler write here as a generation advances.
 *
 * Every write carries a `stage`, and a write whose stage is not later than the record's is
 * dropped, so a late or repeated update (a retried Poll after Persist, a Notify retry, the
 * reconciler after Notify) never moves a generation backwards. See docs/decisions/0016-generations-index.md.
 */

/**
 * How a generation was started: `api` (an HTTP client), `console` (the web console's form),
 * `cli` (`sd35 generate`), `request-file`, `event`, `schedule` (the trigger), `local`
 * (`npm run generate`), `direct` (StartExecution by hand). Only `api` and `cli` can be claimed by
 * a caller (the `Generation-Source` header, docs/api.md); the others are set by their own code.
 */
export const GENERATION_SOURCES = [
  'api',
  'console',
  'cli',
  'event',
  'request-file',
  'schedule',
  'local',
  'direct',
] as const;
export const generationSourceSchema = z.enum(GENERATION_SOURCES);
export type GenerationSource = z.infer<typeof generationSourceSchema>;

/** Stages: 0 registered, 1 submitted, 1 + n after the n-th poll, {@link FINAL_STAGE} ended. */
export const STAGE = { registered: 0, submitted: 1 } as const;
/** The stage of an ended generation: nothing moves it afterwards. */
export const FINAL_STAGE = 1_000_000_000;

/** The stage a task state stands for: Submit's is 1, each poll one more. */
export const stageOfPoll = (pollCount: number) => STAGE.submitted + pollCount;

const iso = z.iso.datetime({ offset: true });

/** An image as Persist stored it, and a failed one: the same shapes as Persist's result. */
export const imageRecordSchema = persistResultSchema.shape.images.element;
export const failedImageSchema = persistResultSchema.shape.failed.element;

export const dashscopeRecordSchema = z.object({
  /** The account that runs the task (`dashscopeAccounts[].name`). */
  account: z.string().optional(),
  taskId: z.string().optional(),
  /** DashScope's task status at the last write (PENDING, RUNNING, …). */
  status: z.string().optional(),
  /** When our submit got its answer. */
  submittedAt: iso.optional(),
  /** DashScope's own times, ISO 8601 UTC. */
  submitTime: z.string().optional(),
  scheduledTime: z.string().optional(),
  endTime: z.string().optional(),
});

export const progressRecordSchema = z.object({
  done: z.number().int().nonnegative(),
  failed: z.number().int().nonnegative(),
  total: z.number().int().nonnegative(),
});

export const errorRecordSchema = z.object({
  type: z.string(),
  message: z.string(),
  upstreamCode: z.string().optional(),
});

/** One generation as the index keeps it. */
export const generationRecordSchema = z.object({
  id: z.string().min(1),
  /** The execution's start (the API's clock when it registered first), ISO 8601. */
  createdAt: iso,
  updatedAt: iso,
  source: generationSourceSchema,
  /** Who asked: the IAM principal ARN or the JWT `sub`, when the API knows it. */
  caller: z.string().optional(),
  status: generationStatusSchema,
  stage: z.number().int().nonnegative(),
  /** The request as the workflow runs it (defaults applied); absent if it never parsed. */
  request: z.record(z.string(), z.unknown()).optional(),
  progress: progressRecordSchema.optional(),
  dashscope: dashscopeRecordSchema.optional(),
  images: z.array(imageRecordSchema).optional(),
  failedImages: z.array(failedImageSchema).optional(),
  error: errorRecordSchema.optional(),
  manifestKey: z.string().optional(),
  endedAt: iso.optional(),
});
export type GenerationRecord = z.infer<typeof generationRecordSchema>;

/** What whoever starts a generation knows: written once, never changes the status. */
export interface GenerationRegistration {
  readonly id: string;
  readonly createdAt: string;
  readonly source: GenerationSource;
  readonly caller?: string;
  readonly request: Record<string, unknown>;
}

/** What a registration found. */
export interface RegistrationOutcome {
  /** The record as it stood before this registration; absent when this registration created it. */
  readonly existing?: GenerationRecord;
}

/** A step forward: applied only when `stage` is later than the record's. */
export interface GenerationUpdate {
  readonly id: string;
  readonly stage: number;
  readonly status: GenerationRecord['status'];
  /** Filled in when the record does not exist yet (the workflow got there before its starter). */
  readonly createdAt: string;
  readonly source: GenerationSource;
  readonly request?: Record<string, unknown>;
  readonly progress?: GenerationRecord['progress'];
  readonly dashscope?: GenerationRecord['dashscope'];
  readonly images?: GenerationRecord['images'];
  readonly failedImages?: GenerationRecord['failedImages'];
  readonly error?: GenerationRecord['error'];
  readonly manifestKey?: string;
  readonly endedAt?: string;
}

/** Where a newest-first walk stopped: the last item it returned. */
export interface ListPosition {
  readonly createdAt: string;
  readonly id: string;
}

export interface ListQuery {
  readonly status?: GenerationRecord['status'];
  readonly limit: number;
  /** Continue after this item (exclusive). */
  readonly after?: ListPosition;
}

export interface ListPage {
  readonly items: readonly GenerationRecord[];
  /** Whether anything matches after the last item. */
  readonly more: boolean;
}

/** The same Idempotency-Key (the same id) was registered with another request. */
export class RegistrationConflictError extends Error {
  override readonly name = 'RegistrationConflictError';
}

/** The index could not be read or written (an outage, throttling). */
export class IndexUnavailableError extends Error {
  override readonly name = 'IndexUnavailableError';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/**
 * The port of the generations index. Adapters: DynamoDB (`functions/shared/aws/dynamodb-index.ts`,
 * on AWS and against dynalite locally) and an in-memory one for unit tests, held to the same
 * contract by `test/contract/generation-index.contract.ts`.
 */
export interface GenerationIndex {
  /** The record, or undefined. Strongly consistent. */
  get(id: string): Promise<GenerationRecord | undefined>;
  /**
   * Records a new generation before it starts: creates it `queued` at stage 0, or, if the record
   * exists (a replay, or the workflow got there first), fills in only what it lacks (`caller`).
   * One atomic write: of concurrent registrations of one id, exactly one creates the record, and
   * every other is told what it found (`existing`).
   * @throws RegistrationConflictError when the record holds another request
   */
  register(registration: GenerationRegistration): Promise<RegistrationOutcome>;
  /** Applies the update if its stage is later than the record's; true when it did. */
  advance(update: GenerationUpdate): Promise<boolean>;
  /** Newest first (by `createdAt`, then id), optionally one status only. */
  list(query: ListQuery): Promise<ListPage>;
}

/** Newest-first order of the index: `createdAt`, then id, both descending. */
export function compareNewestFirst(a: ListPosition, b: ListPosition): number {
  if (a.createdAt !== b.createdAt) return a.createdAt < b.createdAt ? 1 : -1;
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
}

/** The index's key attributes and index names: the CDK table and the adapter both read these. */
export const INDEX_KEY = {
  /** The table's partition key. */
  id: 'id',
  /** `byCreated`'s partition key: one value for every generation. */
  listPartition: 'listKey',
  /** Both indexes' sort key: `createdAt#id`. */
  sort: 'createdKey',
  /** `byStatus`'s partition key. */
  status: 'status',
} as const;
export const INDEX_NAME = { byCreated: 'byCreated', byStatus: 'byStatus' } as const;
/** The one partition of `byCreated`. */
export const LIST_PARTITION = 'generation';

/** A request's fingerprint: equal requests (whatever their key order) have equal hashes. */
export function requestHashOf(request: Record<string, unknown>): string {
  return createHash('sha256').update(canonicalJson(request)).digest('base64url');
}
