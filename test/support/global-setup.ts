import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SYNTH_CACHE_DIR_ENV } from '../../local/synth-cache.js';

/**
 * One synth cache per `vitest` run, in a temporary folder: each configuration the tests run the
 * local workflow with is synthesized once per run rather than once per file, and no test reads or
 * writes the developer's `.local/`. The workers (and the CLIs the tests spawn) inherit the variable.
 * The infra tests that assert on the template synthesize for real through their own helper.
 */
export default function setup(): () => void {
  const dir = mkdtempSync(path.join(tmpdir(), 'sd35-synth-cache-'));
  process.env[SYNTH_CACHE_DIR_ENV] = dir;
  return () => rmSync(dir, { recursive: true, force: true });
}
