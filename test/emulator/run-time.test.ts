import { describe, expect, it } from 'vitest';
import { estimateRun, resolveRunTimeModel } from '../../functions/shared/run-time-estimate.js';
import { emulatorRunTimeModel, runTimeMs } from '../../local/dashscope-emulator/run-time.js';
import type { SdModel } from '../../local/dashscope-emulator/types.js';

const SHAPES: Array<{ model: SdModel; width: number; height: number; steps: number; n: number }> = [
  { model: 'stable-diffusion-3.5-large', width: 1024, height: 1024, steps: 40, n: 1 },
  { model: 'stable-diffusion-3.5-large', width: 768, height: 512, steps: 28, n: 4 },
  { model: 'stable-diffusion-3.5-large-turbo', width: 512, height: 512, steps: 4, n: 1 },
  { model: 'stable-diffusion-3.5-large-turbo', width: 1024, height: 896, steps: 8, n: 2 },
];

describe('emulatorRunTimeModel', () => {
  it.each([1, 4])('gives the poll policy the run time the emulator uses, at speed %d', (speed) => {
    // Prepare
    const model = resolveRunTimeModel(emulatorRunTimeModel(speed));

    // Act
    const estimates = SHAPES.map(
      (shape) =>
        estimateRun(
          { model: shape.model, size: `${shape.width}*${shape.height}`, steps: shape.steps, n: shape.n },
          model,
        ).seconds,
    );

    // Assess
    expect(estimates.map((seconds) => Math.round(seconds * 1000))).toEqual(
      SHAPES.map((shape) => runTimeMs(shape, speed)),
    );
  });
});
