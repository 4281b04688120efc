import * as z from 'zod';
import type { TaskStatus } from './dashscope/schemas.js';
import type { ErrorType } from './errors.js';
import { generationRequestSchema, modelSchema } from './generation-request.js';

/**
 * The data that travels through the state machine ({@link workflowStateSchema}). Each Lambda reads
 * the parts it needs from the whole state and returns only its own part (placed by `ResultPath`):
 *
 *   { id, request }            execution input, shaped by the `Init` Pass state
 *   + admission                the dispatcher's grant, resuming Admit
 *   + task                     written by Submit, replaced by every Poll
 *   + result                   written by Persist
 *
 * Result URLs are deliberately not kept in the state: they are bearer links, and Persist fetches
 * fresh ones from DashScope instead.
 */

/** Our normalized view of DashScope's task states. */
export const GENERATION_STATUSES = [
  'queued',
  'running',
  'succeeded',
  'failed',
  'canceled',
  'expired',
] as const;
export const generationStatusSchema = z.enum(GENERATION_STATUSES);
export type GenerationStatus = z.infer<typeof generationStatusSchema>;

/** Maps DashScope's status: SUSPENDED waits like PENDING; UNKNOWN means the record is gone. */
export function normalizeStatus(status: TaskStatus): GenerationStatus {
  switch (status) {
    case 'PENDING':
    case 'SUSPENDED':
      return 'queued';
    case 'RUNNING':
      return 'running';
    case 'SUCCEEDED':
      return 'succeeded';
    case 'FAILED':
      return 'failed';
    case 'CANCELED':
      return 'canceled';
    case 'UNKNOWN':
      return 'expired';
  }
}

/** A generation id: also the execution name and the S3 prefix, so it must be safe in both. */
export const generationIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,80}$/, 'must be 1-80 letters, digits, "-" or "_"');

export const progressSchema = z.object({
  total: z.number().int().nonnegative(),
  succeeded: z.number().int().nonnegative(),
  failed: z.number().int().nonnegative(),
});

/** The run the poll policy expects of the task (see run-time-estimate.ts). */
export const runEstimateSchema = z.object({
  seconds: z.number().positive(),
  overheadSeconds: z.number().nonnegative(),
  spread: z.number().positive(),
});

/** The queue ahead of the task as the list endpoint showed it, first and last time it was read. */
export const queueReadingSchema = z.object({
  /** PENDING tasks of the same model submitted before this one, at the last reading. */
  ahead: z.number().int().nonnegative(),
  /** When the last reading was taken, ISO 8601. */
  at: z.iso.datetime(),
  /** The first reading: with the last one, it measures how fast the queue drains. */
  firstAhead: z.number().int().nonnegative(),
  firstAt: z.iso.datetime(),
});
export type QueueReading = z.infer<typeof queueReadingSchema>;

export const taskStateSchema = z.object({
  taskId: z.string().min(1),
  /** The seed actually sent (chosen at random when the request had none); image i used seed + i. */
  seed: z.number().int().nonnegative(),
  submitRequestId: z.string(),
  /** When our submit got its answer, ISO 8601. */
  submittedAt: z.iso.datetime(),
  /** After this instant the generation fails with DeadlineExceeded, ISO 8601. */
  deadline: z.iso.datetime(),
  status: generationStatusSchema,
  dashscopeStatus: z.string(),
  progress: progressSchema.optional(),
  /** DashScope's own times, converted to ISO 8601 UTC. */
  times: z
    .object({
      submit: z.string().optional(),
      scheduled: z.string().optional(),
      end: z.string().optional(),
    })
    .default({}),
  pollCount: z.number().int().nonnegative(),
  /** Seconds the Wait state sleeps before the next poll (an integer, as Wait requires). */
  nextPollSeconds: z.number().int().min(1),
  /** The run time the poll policy expects, set at submit (absent in states from older versions). */
  expectedRun: runEstimateSchema.optional(),
  /** The queue ahead, while the task was PENDING and the list endpoint answered. */
  queue: queueReadingSchema.optional(),
  /** When Poll last called the list endpoint, answered or not (it rate-limits itself), ISO 8601. */
  queueListedAt: z.iso.datetime().optional(),
  deadlineExceeded: z.boolean(),
  error: z
    .object({
      type: z.string() as z.ZodType<ErrorType>,
      code: z.string().optional(),
      message: z.string(),
    })
    .optional(),
  lastRequestId: z.string().optional(),
  /** The DashScope account running the task (`dashscopeAccounts[].name`); absent: the default. */
  account: z.string().optional(),
});
export type TaskState = z.infer<typeof taskStateSchema>;

/** The Admit state's result: the account the dispatcher granted a slot on. */
export const admissionStateSchema = z.object({ account: z.string().min(1), grantedAt: z.iso.datetime() });

/** Input of Admit: the Step Functions task token resumes the execution once granted. */
export const admitInputSchema = z.object({
  id: generationIdSchema,
  request: generationRequestSchema,
  taskToken: z.string().min(1),
});

/** Input of Submit. */
export const submitInputSchema = z.object({
  id: generationIdSchema,
  request: generationRequestSchema,
  /** Absent when the workflow has no Admit state (older definitions). */
  admission: admissionStateSchema.optional(),
});
/** Input of Poll and Persist. */
export const taskInputSchema = z.object({
  id: generationIdSchema,
  request: generationRequestSchema,
  task: taskStateSchema,
});
export type TaskInput = z.infer<typeof taskInputSchema>;

/** What Persist returns (placed at `$.result`): small, the manifest holds the details. */
/**
 * A stored thumbnail (WebP, at most 256 px on its longest side) of one image, as the manifest,
 * Persist's result and the index record it. Optional wherever it appears: images stored before
 * thumbnails existed, and images whose thumbnail could not be made, have none.
 */
export const thumbnailSchema = z.object({
  key: z.string(),
  bytes: z.number().int().nonnegative(),
  contentType: z.string(),
  width: z.number().int().positive(),
  height: z.number().int().positive(),
});
export type StoredThumbnail = z.infer<typeof thumbnailSchema>;

export const persistResultSchema = z.object({
  manifestKey: z.string(),
  status: z.enum(['complete', 'partial']),
  images: z.array(
    z.object({
      index: z.number().int(),
      key: z.string(),
      bytes: z.number().int(),
      sha256: z.string(),
      contentType: z.string(),
      seed: z.number().int(),
      thumbnail: thumbnailSchema.optional(),
    }),
  ),
  failed: z.array(z.object({ index: z.number().int(), type: z.string(), message: z.string() })),
});
export type PersistResult = z.infer<typeof persistResultSchema>;

/** An error as Step Functions writes it: a Catch's result, and the workflow's own failures. */
export const stateErrorSchema = z.object({ Error: z.string(), Cause: z.string().optional() });
export type StateError = z.infer<typeof stateErrorSchema>;

/** The execution input: the request as it was started (Admit validates it). */
export const executionInputSchema = generationRequestSchema;
export type ExecutionInput = z.infer<typeof executionInputSchema>;

/**
 * The whole state between the workflow's states, every field any state writes: what Notify gets,
 * and the shape every path of the definition is built from (`infra/constructs/workflow.ts`, with
 * `json-path.ts`) and checked against (`test/infra/json-paths.test.ts`). Fields a state has not
 * written yet are absent.
 */
export const workflowStateSchema = z.object({
  /** The execution name. */
  id: generationIdSchema,
  request: generationRequestSchema,
  /** The configured default model, between Init and Apply defaults only. */
  defaults: z.object({ model: modelSchema }).optional(),
  /** Admit's result. */
  admission: admissionStateSchema.optional(),
  /** Submit's result, then every Poll's. */
  task: taskStateSchema.optional(),
  /** Persist's result. */
  result: persistResultSchema.optional(),
  /** Why the generation failed: a Catch's result, or the Pass state of a workflow error. */
  failure: stateErrorSchema.optional(),
  /** Notify's result (functions/notify); nothing reads it. */
  notification: z.unknown().optional(),
  /** Why Notify failed, caught on the way to its last attempt or the end. */
  notificationError: stateErrorSchema.optional(),
});
export type WorkflowState = z.infer<typeof workflowStateSchema>;

/**
 * What every workflow Lambda gets besides its part of the state, from the context object: the
 * execution ARN for its logs' correlation fields, and the execution's start (ISO 8601), which the
 * index records as the generation's creation time.
 */
export const executionIdentitySchema = z.object({ executionId: z.string(), startedAt: z.string() });
export type ExecutionIdentity = z.infer<typeof executionIdentitySchema>;
