import * as z from 'zod';
import type { Model } from './generation-request.js';

/**
 * The run time the poll policy expects of a task once it holds the account's single runner.
 * DashScope publishes no run times, so this is an estimate, configurable per deployment (the stack
 * configuration's `runTimeModel`, passed to Submit as `RUN_TIME_MODEL`):
 *
 *     seconds = overheadSeconds + n × steps × megapixels × secondsPerMegapixelStep[model]
 *
 * The default rate comes from the one run time DashScope has published for SD 3.5: the seed
 * document's query example ran 20.1 s from `scheduled_time` to `end_time`, beside a request for
 * 4 images of 512*512 at the default 40 steps: (20.1 − 1) / (4 × 0.262 × 40) ≈ 0.456 s per
 * megapixel-step, so one 1024*1024 image at 40 steps takes about 20 s. Turbo is the same 8B model
 * distilled to need fewer steps; a step costs the same, so it has the same rate and is faster only
 * through the steps a caller asks for.
 *
 * `spread` is how far off the policy allows the estimate to be: the σ of ln(actual / estimate).
 * Recalibrate from your own generations: every manifest records DashScope's scheduled and end times.
 */
export interface RunTimeModel {
  /** Fixed seconds per task: scheduling, the model's warm-up, storing the results. */
  readonly overheadSeconds: number;
  /** Seconds per image, per step, per megapixel, for each model. */
  readonly secondsPerMegapixelStep: Readonly<Record<Model, number>>;
  /** σ of ln(actual / estimated run time) the poll policy allows for. */
  readonly spread: number;
}

/** The defaults documented on {@link RunTimeModel}. */
export const DEFAULT_RUN_TIME_MODEL: RunTimeModel = {
  overheadSeconds: 1,
  secondsPerMegapixelStep: {
    'stable-diffusion-3.5-large': 0.456,
    'stable-diffusion-3.5-large-turbo': 0.456,
  },
  spread: 0.2,
};

/** Overrides of {@link DEFAULT_RUN_TIME_MODEL}, as the stack configuration and `RUN_TIME_MODEL` give them. */
export const runTimeModelOverridesSchema = z.strictObject({
  overheadSeconds: z.number().min(0).max(600).optional(),
  secondsPerMegapixelStep: z
    .strictObject({
      'stable-diffusion-3.5-large': z.number().positive().max(100).optional(),
      'stable-diffusion-3.5-large-turbo': z.number().positive().max(100).optional(),
    })
    .optional(),
  spread: z.number().min(0.01).max(2).optional(),
});
export type RunTimeModelOverrides = z.infer<typeof runTimeModelOverridesSchema>;

/** The default model with `overrides` applied. */
export function resolveRunTimeModel(overrides: RunTimeModelOverrides = {}): RunTimeModel {
  const rates = overrides.secondsPerMegapixelStep ?? {};
  return {
    overheadSeconds: overrides.overheadSeconds ?? DEFAULT_RUN_TIME_MODEL.overheadSeconds,
    secondsPerMegapixelStep: {
      'stable-diffusion-3.5-large':
        rates['stable-diffusion-3.5-large'] ??
        DEFAULT_RUN_TIME_MODEL.secondsPerMegapixelStep['stable-diffusion-3.5-large'],
      'stable-diffusion-3.5-large-turbo':
        rates['stable-diffusion-3.5-large-turbo'] ??
        DEFAULT_RUN_TIME_MODEL.secondsPerMegapixelStep['stable-diffusion-3.5-large-turbo'],
    },
    spread: overrides.spread ?? DEFAULT_RUN_TIME_MODEL.spread,
  };
}

/** What a run time depends on: the request's model, size (`W*H`), steps and image count. */
export interface RunShape {
  readonly model: Model;
  readonly size: string;
  readonly steps: number;
  readonly n: number;
}

/** The expected run of one task: the policy's view, stored in the workflow state at submit. */
export interface RunEstimate {
  /** Expected seconds from `scheduled_time` to `end_time` (the median the policy assumes). */
  readonly seconds: number;
  /** The part of it that passes before the first image is done. */
  readonly overheadSeconds: number;
  /** σ of ln(actual / estimate). */
  readonly spread: number;
}

/** Megapixels of a `W*H` size; a malformed size counts as 1024*1024, the default. */
export function megapixels(size: string): number {
  const match = /^(\d+)\*(\d+)$/.exec(size);
  const width = Number(match?.[1] ?? 1024);
  const height = Number(match?.[2] ?? 1024);
  return (width * height) / 1_000_000;
}

/** The estimate of {@link RunTimeModel} for one request. */
export function estimateRun(shape: RunShape, model: RunTimeModel = DEFAULT_RUN_TIME_MODEL): RunEstimate {
  const perImage = shape.steps * megapixels(shape.size) * model.secondsPerMegapixelStep[shape.model];
  return {
    seconds: model.overheadSeconds + shape.n * perImage,
    overheadSeconds: model.overheadSeconds,
    spread: model.spread,
  };
}
