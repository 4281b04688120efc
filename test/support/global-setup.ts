import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { UNPACKED_CHROMIUM_ENV, unpackChromium } from '../../local/browser.js';
import { prepareSynthCache, SYNTH_CACHE_DIR_ENV } from '../../local/synth-cache.js';
import { startCdkSynth, stopCdkSynth } from './cdk-synth.js';
import { TEST_CONFIGURATIONS } from './configurations.js';

const PROJECT_ROOT = path.join(import.meta.dirname, '..', '..');
/** Marks the run's cache as made: vitest runs this setup once for the root and once per project. */
const OWNED = Symbol.for('sd35.test.synthCacheDir');
/** local/pipeline.ts's `LOCAL_DIR_ENV` (importing it would load the whole pipeline here). */
const LOCAL_DIR_ENV = 'SD35_LOCAL_DIR';

/**
 * One synth cache per `vitest` run, in a temporary folder: each configuration the tests run the
 * local workflow with is synthesized once per run rather than once per file (or per project), and
 * no test reads or writes the developer's `.local/`. The workers (and the CLIs the tests spawn)
 * inherit the variable. Every configuration of test/support/configurations.ts is synthesized here,
 * before any worker starts and in one child process, so no worker waits on a synthesis and two
 * never run the same one side by side; one not listed there is synthesized by the first test that
 * asks. The infra tests that assert on the template synthesize for real through their own helper.
 *
 * The local folder's default (`$SD35_LOCAL_DIR`, else the checkout's `.local/`: s3rver's data, the
 * index, the webhook secret) is set to a path that cannot be created, under a file: a test that
 * does not pass a folder of its own fails at once with ENOTDIR naming that path, rather than
 * sharing the checkout's folder with other files, other runs and the developer's `npm start`.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const teardowns: (() => void | Promise<void>)[] = [];
  const state = globalThis as { [OWNED]?: string };
  if (!state[OWNED]) {
    const dir = mkdtempSync(path.join(tmpdir(), 'sd35-synth-cache-'));
    state[OWNED] = dir;
    process.env[SYNTH_CACHE_DIR_ENV] = dir;
    prepareSynthCache({ dir, root: PROJECT_ROOT, generations: TEST_CONFIGURATIONS });
    const run = mkdtempSync(path.join(tmpdir(), 'sd35-test-run-'));
    const guard = path.join(run, 'tests-pass-a-local-folder-of-their-own');
    writeFileSync(guard, 'A file, so that nothing can be made under it (test/support/global-setup.ts).\n');
    process.env[LOCAL_DIR_ENV] = path.join(guard, '.local');
    teardowns.push(() => {
      rmSync(dir, { recursive: true, force: true });
      rmSync(run, { recursive: true, force: true });
      delete state[OWNED];
    });
  }
  if (project.name === 'browser' && !process.env[UNPACKED_CHROMIUM_ENV]) {
    // Unpacked (once per machine and version, see unpackChromium) before any worker starts, so
    // no browser file waits on it; the workers inherit the path.
    process.env[UNPACKED_CHROMIUM_ENV] = await unpackChromium();
  }
  if (project.name === 'infra') {
    // The real `cdk synth` of test/infra/synth.test.ts, started now to run beside the other files.
    const dir = mkdtempSync(path.join(tmpdir(), 'sd35-cdk-synth-'));
    const synth = startCdkSynth(dir);
    project.provide('cdkSynthDir', dir);
    teardowns.push(async () => {
      await stopCdkSynth(synth);
      rmSync(dir, { recursive: true, force: true });
    });
  }
  return async () => {
    for (const teardown of teardowns.reverse()) await teardown();
  };
}

declare module 'vitest' {
  interface ProvidedContext {
    /** Where the infra project's background `cdk synth` writes (see test/support/cdk-synth.ts). */
    cdkSynthDir: string;
  }
}
