import path from 'node:path';
import { cachedSynthesis, SYNTH_CACHE_DIR_ENV, type SynthesizedStack } from '../../local/synth-cache.js';

const PROJECT_ROOT = path.join(import.meta.dirname, '..', '..');

/**
 * The stack as the local runner gets it (cdk.json's context, `generation` merged over it, bundling
 * skipped), from this run's synth cache: every file that reads the same configuration shares one
 * synthesis per run, and no file loads aws-cdk-lib for it. `test/unit/synth-cache.test.ts` holds
 * the cache to a fresh in-process synthesis.
 * @throws {Error} when the run's cache folder is not set (vitest's globalSetup sets it).
 * @throws {SynthesisError} when the synthesis fails.
 */
export function runSynthesis(generation: Record<string, unknown> = {}): SynthesizedStack {
  const dir = process.env[SYNTH_CACHE_DIR_ENV];
  if (!dir) throw new Error(`${SYNTH_CACHE_DIR_ENV} is not set: run the tests through vitest`);
  return cachedSynthesis({ dir, root: PROJECT_ROOT, generation });
}
