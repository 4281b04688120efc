import * as z from 'zod';
import { laneSchema } from '../shared/admission.js';
import { batchMetadataSchema, batchSourceSchema, batchStatusSchema } from '../shared/batch.js';
import { generationSourceSchema } from '../shared/generation-index.js';
import { generationRequestSchema, wellFormedText } from '../shared/generation-request.js';
import { GENERATION_STATUSES, generationStatusSchema } from '../shared/workflow-state.js';

/** One error shape for every 4xx and 5xx. `details` names each bad field. */
export const errorBodySchema = z.object({
  error: z.object({
    type: z.string().meta({ description: 'Stable, machine-readable kind, e.g. invalid_request, not_found' }),
    message: z.string(),
    details: z.array(z.object({ field: z.string(), message: z.string() })).optional(),
  }),
});

export type ErrorBody = z.infer<typeof errorBodySchema>;

/** What API Gateway itself answers (403, 429, its own 401 in JWT mode, 5xx): not this API's shape. */
export const gatewayErrorSchema = z.object({ message: z.string() });

/** The answer of `GET /healthz`. */
export const healthSchema = z.object({ status: z.literal('ok') });

/** Largest request body accepted: a request is well under 8 KB. */
export const MAX_BODY_BYTES = 16 * 1024;

export const linksSchema = z.object({
  self: z.string(),
  cancel: z.string(),
});

/** The answer to a create: enough to follow the generation. */
export const createdGenerationSchema = z.object({
  id: z.string(),
  status: generationStatusSchema,
  createdAt: z.iso.datetime(),
  links: linksSchema,
});

export const imageViewSchema = z.object({
  index: z.number().int(),
  url: z.string().meta({ description: 'Presigned GET URL; it works until expiresAt' }),
  expiresAt: z.iso.datetime().meta({
    description:
      'When url stops working: the configured lifetime, capped at the signing credentials’ expiration (at most 12 hours). Fetch the generation again for a fresh link.',
  }),
  key: z.string(),
  bytes: z.number().int(),
  contentType: z.string(),
  sha256: z.string(),
  seed: z.number().int(),
  thumbnailUrl: z.string().optional().meta({
    description:
      'Presigned GET URL of the image’s thumbnail (WebP, at most 256 px on its longest side); it works until expiresAt too. Absent for images stored without one.',
  }),
  thumbnail: z
    .object({
      key: z.string(),
      bytes: z.number().int(),
      contentType: z.string(),
      width: z.number().int(),
      height: z.number().int(),
    })
    .optional()
    .meta({ description: 'The thumbnail’s object key, size and pixel dimensions, when the image has one' }),
});

/** A generation as the API shows it: status, progress, DashScope's times, images or the error. */
export const generationViewSchema = z.object({
  id: z.string(),
  status: generationStatusSchema,
  createdAt: z.iso.datetime(),
  endedAt: z.iso.datetime().optional(),
  /**
   * How it was started: api, console, cli (`sd35`), event, request-file, schedule, local
   * (`npm run generate`) or direct (StartExecution).
   */
  source: generationSourceSchema.optional(),
  request: generationRequestSchema.optional(),
  progress: z.object({
    /** Images finished (stored, once succeeded) of `total`. */
    done: z.number().int(),
    failed: z.number().int(),
    total: z.number().int(),
  }),
  dashscope: z.object({
    /** The DashScope account that runs (or ran) the task. */
    account: z.string().optional(),
    taskId: z.string().optional(),
    submitTime: z.string().optional(),
    scheduledTime: z.string().optional(),
    endTime: z.string().optional(),
  }),
  images: z.array(imageViewSchema).optional(),
  failedImages: z
    .array(z.object({ index: z.number().int(), type: z.string(), message: z.string() }))
    .optional(),
  manifestKey: z.string().optional(),
  error: z.object({ type: z.string(), message: z.string(), upstreamCode: z.string().optional() }).optional(),
  /** While it waits for admission (before its DashScope submit), from the 202 on. */
  queue: z
    .object({
      lane: laneSchema,
      position: z.number().int().meta({ description: 'Grants that go out before this one; 0: next' }),
      estimatedStartAt: z.iso
        .datetime()
        .meta({ description: 'When its task is expected to start running at DashScope (an estimate)' }),
    })
    .optional(),
  links: linksSchema,
});

export type GenerationView = z.infer<typeof generationViewSchema>;
export type ImageView = z.infer<typeof imageViewSchema>;

export const generationListSchema = z.object({
  data: z.array(generationViewSchema),
  /** Pass as `cursor` for the next page; absent on the last page. */
  nextCursor: z.string().optional(),
});

/** A page of any list: 1–50 items (20 by default) after an opaque cursor. */
export const pageQuerySchema = z.strictObject({
  limit: z.coerce
    .number()
    .int('must be an integer')
    .min(1, 'must be at least 1')
    .max(50, 'must be at most 50')
    .default(20),
  cursor: wellFormedText(z.string().min(1).max(4096)).optional(),
});

export const listQuerySchema = pageQuerySchema.extend({
  status: z.enum(GENERATION_STATUSES).optional(),
});

/** `Idempotency-Key`: printable ASCII, 1–255 characters. */
export const idempotencyKeySchema = z
  .string()
  .min(1, 'must not be empty')
  .max(255, 'must be at most 255 characters')
  .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces');

/** The header a client names itself with: `Generation-Source`. */
export const GENERATION_SOURCE_HEADER = 'Generation-Source';

/**
 * `Generation-Source`: what a caller may say it is, recorded as the generation's `source`. Only
 * these two: the console's form records `console` itself, and `event`, `schedule`,
 * `request-file` and `local` are recorded by the code that starts those, never by a caller's word.
 */
export const generationSourceHeaderSchema = z.enum(['api', 'cli'], {
  error: 'must be api or cli (the console, events, schedules and request files record their own)',
});

/** The body of a create: the very schema the workflow validates with. */
export const createBodySchema = generationRequestSchema;

/** Where a batch's requests stand: `rejected` never became generations; each generation is in exactly one of the others. */
export const batchCountsViewSchema = z.object({
  total: z.number().int().meta({ description: 'Requests sent: every line, valid or not' }),
  rejected: z.number().int().meta({ description: 'Lines refused at creation: never generations' }),
  waiting: z.number().int().meta({
    description:
      'Generations not started at DashScope yet: in the admission queue, or not yet started by the trigger',
  }),
  running: z.number().int().meta({ description: 'Generations whose DashScope task runs' }),
  succeeded: z.number().int().meta({ description: 'Generations that succeeded with every image' }),
  partial: z.number().int().meta({ description: 'Generations that succeeded with some images failed' }),
  failed: z.number().int().meta({ description: 'Generations that failed, timed out or expired' }),
  canceled: z.number().int().meta({
    description: 'Generations cancelled, and, once the batch was cancelled, lines never started',
  }),
});

/** A batch as the API shows it (`BatchView` in batches.ts). */
export const batchViewSchema = z.object({
  id: z.string(),
  status: batchStatusSchema.meta({
    description: 'in_progress, cancelling, then completed or cancelled (final)',
  }),
  source: batchSourceSchema,
  priority: laneSchema.meta({
    description: 'The admission lane its generations wait in (a line may name its own)',
  }),
  createdAt: z.iso.datetime(),
  completedAt: z.iso.datetime().optional(),
  estimatedCompletionAt: z.iso.datetime().optional().meta({
    description: 'While it runs: when its last generation is expected to end (an estimate, an upper bound)',
  }),
  counts: batchCountsViewSchema,
  metadata: batchMetadataSchema.optional(),
  file: z
    .object({ bucket: z.string(), key: z.string() })
    .optional()
    .meta({ description: 'The request file it was made from (request-file batches only)' }),
  links: z.object({ self: z.string(), generations: z.string(), cancel: z.string(), results: z.string() }),
});

/** A line a batch refused at creation, with its number (from 1) and why. */
export const batchRejectionSchema = z.object({
  line: z.number().int(),
  error: z.object({
    type: z.literal('invalid_request'),
    message: z.string().meta({ description: '"line <n>: <field>: <reason>; …"' }),
    details: z.array(z.object({ field: z.string(), message: z.string() })).optional(),
  }),
});

/** The answer to `POST /v1/batches`: the batch and the lines it refused. */
export const createdBatchSchema = batchViewSchema.extend({ rejected: z.array(batchRejectionSchema) });

export const batchListSchema = z.object({
  data: z.array(batchViewSchema),
  /** Pass as `cursor` for the next page; absent on the last page. */
  nextCursor: z.string().optional(),
});

/** `GET /v1/batches/{id}/results`: a link to the results file. */
export const batchResultsLinkSchema = z.object({
  key: z.string().meta({ description: 'batches/{id}/results.jsonl' }),
  url: z.string().meta({ description: 'Presigned GET URL; it works until expiresAt' }),
  expiresAt: z.iso.datetime(),
  expiresInSeconds: z.number().int().meta({ description: 'Seconds from the answer to expiresAt' }),
});
