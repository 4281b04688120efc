import { z } from 'zod';
import { SD_MODELS, type SdModel } from './types.js';

/** Side lengths the service accepts: 512..1024 in steps of 128. */
const SIDES = [512, 640, 768, 896, 1024];

/** Largest seed: the 32-bit signed range the other DashScope image models document. */
export const MAX_SEED = 2147483647;

/** A validated submit, defaults applied. `seed` stays undefined when the caller gave none. */
export interface SubmitRequest {
  model: SdModel;
  prompt: string;
  negativePrompt: string | undefined;
  initImage: string | undefined;
  width: number;
  height: number;
  n: number;
  steps: number;
  cfg: number;
  seed: number | undefined;
  shift: number;
}

/** A parsed submit, or the error the service would answer. */
export type SubmitParseResult =
  | { ok: true; request: SubmitRequest }
  | { ok: false; status: 400 | 404; code: string; message: string };

const SIZE_ERROR = `parameters.size must be "W*H" with W and H each one of ${SIDES.join(', ')}`;

function integerIn(field: string, min: number, max: number) {
  const error = `${field} must be an integer between ${min} and ${max}`;
  return z.number({ error }).int({ error }).min(min, { error }).max(max, { error });
}

function finiteNumber(field: string) {
  return z.number({ error: `${field} must be a number` });
}

const sizeSchema = z
  .string({ error: SIZE_ERROR })
  .regex(/^\d+\*\d+$/, { error: SIZE_ERROR })
  .refine((size) => size.split('*').every((side) => SIDES.includes(Number(side))), {
    error: SIZE_ERROR,
  });

const modelSchema = z.string({ error: 'model must be a non-empty string' }).min(1, {
  error: 'model must be a non-empty string',
});

/** Zod's default `object` strips unknown keys, which is how the service treats extra fields. */
const bodySchema = z.object(
  {
    input: z.object(
      {
        prompt: z
          .string({ error: 'input.prompt must be a non-empty string' })
          .refine((prompt) => prompt.trim().length > 0, {
            error: 'input.prompt must be a non-empty string',
          }),
        negative_prompt: z.string({ error: 'input.negative_prompt must be a string' }).optional(),
        init_image: z
          .url({ protocol: /^https?$/, error: 'input.init_image must be an http(s) URL' })
          .optional(),
      },
      { error: 'input must be an object' },
    ),
    parameters: z
      .object(
        {
          size: sizeSchema.default('1024*1024'),
          n: integerIn('parameters.n', 1, 4).default(1),
          steps: integerIn('parameters.steps', 1, 500).default(40),
          cfg: finiteNumber('parameters.cfg').default(4.5),
          seed: integerIn('parameters.seed', 0, MAX_SEED).optional(),
          shift: finiteNumber('parameters.shift').default(3.0),
        },
        { error: 'parameters must be an object' },
      )
      .default({ size: '1024*1024', n: 1, steps: 40, cfg: 4.5, shift: 3.0 }),
  },
  { error: 'the request body must be a JSON object' },
);

/**
 * Validates a submit body the way the service does: the model first (an unknown one is 404
 * ModelNotFound), then input and parameters (400 InvalidParameter naming the field).
 */
export function parseSubmitBody(body: unknown): SubmitParseResult {
  const model = checkModel(body);
  if (!model.ok) return model;
  const parsed = bodySchema.safeParse(body);
  if (!parsed.success) return invalid(describeIssue(parsed.error));
  const { input, parameters } = parsed.data;
  const [width, height] = parameters.size.split('*').map(Number) as [number, number];
  return {
    ok: true,
    request: {
      model: model.model,
      prompt: input.prompt,
      negativePrompt: input.negative_prompt,
      initImage: input.init_image,
      width,
      height,
      n: parameters.n,
      steps: parameters.steps,
      cfg: parameters.cfg,
      seed: parameters.seed,
      shift: parameters.shift,
    },
  };
}

function checkModel(body: unknown): { ok: true; model: SdModel } | Extract<SubmitParseResult, { ok: false }> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return invalid('the request body must be a JSON object');
  }
  const parsed = modelSchema.safeParse((body as { model?: unknown }).model);
  if (!parsed.success) return invalid(describeIssue(parsed.error));
  const model = SD_MODELS.find((known) => known === parsed.data);
  if (!model) {
    return { ok: false, status: 404, code: 'ModelNotFound', message: `Model not exist: ${parsed.data}` };
  }
  return { ok: true, model };
}

/** Our messages already name the field; the path prefix covers any check without one. */
function describeIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return 'the request body is invalid';
  const field = issue.path.join('.');
  return field && !issue.message.startsWith(field) ? `${field}: ${issue.message}` : issue.message;
}

function invalid(message: string): Extract<SubmitParseResult, { ok: false }> {
  return { ok: false, status: 400, code: 'InvalidParameter', message };
}
