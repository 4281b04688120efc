import type { RunTimeModelOverrides } from '../../functions/shared/run-time-estimate.js';
import type { SdModel } from './types.js';

/** Fixed cost of every task (scheduling, model warm-up), before speed scaling. */
const TASK_OVERHEAD_MS = 400;
/** One 1024×1024 image at the default 40 steps on the large model, before speed scaling. */
const REFERENCE_IMAGE_MS = 5000;
/** The turbo model's adversarial distillation makes it about four times faster. */
const TURBO_FACTOR = 0.25;

/** What a run time depends on. */
export interface RunShape {
  model: SdModel;
  width: number;
  height: number;
  steps: number;
  n: number;
}

/**
 * Run time of one task in ms, once it holds the account's single runner:
 *
 *     runTime  = (400 + perImage × n) / speed
 *     perImage = 5000 × (steps / 40) × (W × H) / (1024 × 1024)   (× 1/4 for the turbo model)
 *
 * so it grows linearly with steps, pixels and images, and a default large image takes about 5 s,
 * the order the service shows. Rounded to whole ms.
 */
export function runTimeMs(shape: RunShape, speed: number): number {
  const modelFactor = shape.model === 'stable-diffusion-3.5-large-turbo' ? TURBO_FACTOR : 1;
  const perImage =
    REFERENCE_IMAGE_MS * (shape.steps / 40) * ((shape.width * shape.height) / (1024 * 1024)) * modelFactor;
  return Math.round((TASK_OVERHEAD_MS + perImage * shape.n) / speed);
}

/**
 * The formula above as the poll policy's run-time model (functions/shared/run-time-estimate.ts),
 * so a local run against an emulator of this speed polls as it would against a service the
 * estimate fits: the default model follows DashScope's published sample, which is slower.
 */
export function emulatorRunTimeModel(speed: number): RunTimeModelOverrides {
  const perMegapixelStep = REFERENCE_IMAGE_MS / 1000 / 40 / ((1024 * 1024) / 1_000_000) / speed;
  return {
    overheadSeconds: TASK_OVERHEAD_MS / 1000 / speed,
    secondsPerMegapixelStep: {
      'stable-diffusion-3.5-large': perMegapixelStep,
      'stable-diffusion-3.5-large-turbo': perMegapixelStep * TURBO_FACTOR,
    },
  };
}
