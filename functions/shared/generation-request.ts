import * as z from 'zod';
import { laneSchema } from './admission.js';
import { detailsOf } from './zod-details.js';

/** The two Stable Diffusion 3.5 models DashScope serves. */
export const MODELS = ['stable-diffusion-3.5-large', 'stable-diffusion-3.5-large-turbo'] as const;
export const modelSchema = z.enum(MODELS);
export type Model = z.infer<typeof modelSchema>;

/** Allowed image sides: 512..1024 in steps of 128 (the seed's size grid). */
export const SIDES = [512, 640, 768, 896, 1024] as const;

/** Largest seed DashScope accepts; image i of a batch uses seed + i. */
export const MAX_SEED = 2_147_483_647;

/** Completion events a webhook can subscribe to. */
export const WEBHOOK_EVENTS = ['generation.succeeded', 'generation.failed'] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

/** Upper bound of a prompt we forward. DashScope silently truncates past 75 words anyway. */
export const MAX_PROMPT_CHARS = 2000;

const SIDE_PATTERN = SIDES.join('|');
const sizeSchema = z
  .string()
  .regex(/^\d+\*\d+$/, 'must be "W*H" with an asterisk, e.g. "1024*1024"')
  .regex(
    new RegExp(`^(${SIDE_PATTERN})\\*(${SIDE_PATTERN})$`),
    `width and height must each be one of ${SIDES.join(', ')}`,
  );

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * The rule of every string field of a request: no NUL (it truncates C strings downstream), no
 * lone UTF-16 surrogate (it has no UTF-8 encoding, so it would be mangled further on), and no
 * U+FFFD: a decoder puts that replacement character where bytes were not UTF-8 (a request file
 * saved in Latin-1, say), so a prompt holding it has already lost what its author wrote.
 */
export function wellFormedText<T extends z.ZodType<string>>(schema: T): T {
  return schema
    .refine((value) => !value.includes('\u0000'), 'must not contain a NUL character (U+0000)')
    .refine((value) => !LONE_SURROGATE.test(value), 'must not contain a lone surrogate (malformed Unicode)')
    .refine(
      (value) => !value.includes('\uFFFD'),
      'must not contain U+FFFD, the replacement character: bytes that were not UTF-8 (save the text as UTF-8)',
    );
}

const httpUrlSchema = wellFormedText(
  z
    .url({ protocol: /^https?$/, error: 'must be an http(s) URL' })
    .max(2048, 'must be at most 2048 characters'),
);

/**
 * A generation request as users send it (HTTP API, events, CLI). Unknown fields are rejected so
 * that a typo (`negativePrompt`) is reported instead of silently ignored. Defaults follow the seed
 * document; `n` is always sent explicitly because the seed's two tables disagree (1 vs 4).
 */
export const generationRequestSchema = z
  .strictObject({
    prompt: wellFormedText(
      z
        .string({ error: (issue) => (issue.input === undefined ? 'is required' : 'must be a string') })
        .trim()
        .min(1, 'must not be empty')
        .max(MAX_PROMPT_CHARS, `must be at most ${MAX_PROMPT_CHARS} characters`),
    ),
    negative_prompt: wellFormedText(
      z
        .string('must be a string')
        .trim()
        .max(MAX_PROMPT_CHARS, `must be at most ${MAX_PROMPT_CHARS} characters`),
    ).optional(),
    model: modelSchema.default('stable-diffusion-3.5-large'),
    size: sizeSchema.default('1024*1024'),
    n: z.int('must be an integer').min(1, 'must be at least 1').max(4, 'must be at most 4').default(1),
    steps: z
      .int('must be an integer')
      .min(1, 'must be at least 1')
      .max(500, 'must be at most 500')
      .default(40),
    cfg: z
      .number('must be a number')
      .gt(0, 'must be greater than 0')
      .max(20, 'must be at most 20 (4 to 5 is recommended)')
      .default(4.5),
    seed: z
      .int('must be an integer')
      .min(0, 'must be at least 0')
      .max(MAX_SEED, `must be at most ${MAX_SEED}`)
      .optional(),
    shift: z
      .number('must be a number')
      .gt(0, 'must be greater than 0')
      .max(20, 'must be at most 20')
      .default(3),
    init_image: httpUrlSchema.optional(),
    /**
     * Where to POST a signed completion notice (Standard Webhooks). Deployed, only https to public
     * addresses is delivered; the check happens at delivery, against the resolved address.
     */
    webhook_url: httpUrlSchema.optional(),
    /**
     * The admission lane: `interactive` goes ahead of `batch` (which keeps a guaranteed share).
     * @default "interactive" through the HTTP API, "batch" every other way in
     */
    priority: laneSchema.optional(),
    /** Which outcomes to notify. @default both */
    webhook_events: z
      .array(z.enum(WEBHOOK_EVENTS), 'must be a list of event names')
      .min(1, 'must name at least one event')
      .optional(),
  })
  // Image i of a batch uses seed + i, so the whole batch must stay in range.
  .refine((request) => request.seed === undefined || request.seed + request.n - 1 <= MAX_SEED, {
    path: ['seed'],
    message: `plus n - 1 must be at most ${MAX_SEED} (image i uses seed + i)`,
  });

/**
 * `value` with `model` set to `model` when it names none, for parsing with the schema: a deployment
 * may default to another model than the schema's. Anything but a plain object, a value that names
 * a model, or no `model` at all: returned unchanged.
 */
export function withDefaultModel(value: unknown, model: Model | undefined): unknown {
  if (model === undefined || typeof value !== 'object' || value === null || Array.isArray(value))
    return value;
  const record = value as Record<string, unknown>;
  return record.model === undefined ? { ...record, model } : value;
}

/** What callers may send (defaults not yet applied). */
export type GenerationRequestInput = z.input<typeof generationRequestSchema>;
/** A validated request with every default applied. */
export type GenerationRequest = z.output<typeof generationRequestSchema>;

/** One line per problem, each naming the field: `n: must be at most 4`. */
export function formatIssues(error: z.ZodError): string {
  return detailsOf(error)
    .map((detail) => `${detail.field}: ${detail.message}`)
    .join('; ');
}

/** Width and height in pixels of a validated `size`. */
export function parseSize(size: string): { width: number; height: number } {
  const [width, height] = size.split('*').map(Number);
  return { width: width ?? 0, height: height ?? 0 };
}
