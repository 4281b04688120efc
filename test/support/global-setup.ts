import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import chromium from '@sparticuz/chromium';
import type { TestProject } from 'vitest/node';
import { UNPACKED_CHROMIUM_ENV } from '../../local/browser.js';
import { prepareSynthCache, SYNTH_CACHE_DIR_ENV } from '../../local/synth-cache.js';
import { startCdkSynth, stopCdkSynth } from './cdk-synth.js';
import { TEST_CONFIGURATIONS } from './configurations.js';

const PROJECT_ROOT = path.join(import.meta.dirname, '..', '..');
/** Marks the run's cache as made: vitest runs this setup once for the root and once per project. */
const OWNED = Symbol.for('sd35.test.synthCacheDir');

/**
 * One synth cache per `vitest` run, in a temporary folder: each configuration the tests run the
 * local workflow with is synthesized once per run rather than once per file (or per project), and
 * no test reads or writes the developer's `.local/`. The workers (and the CLIs the tests spawn)
 * inherit the variable. Every configuration of test/support/configurations.ts is synthesized here,
 * before any worker starts and in one child process, so no worker waits on a synthesis and two
 * never run the same one side by side; one not listed there is synthesized by the first test that
 * asks. The infra tests that assert on the template synthesize for real through their own helper.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const teardowns: (() => void | Promise<void>)[] = [];
  const state = globalThis as { [OWNED]?: string };
  if (!state[OWNED]) {
    const dir = mkdtempSync(path.join(tmpdir(), 'sd35-synth-cache-'));
    state[OWNED] = dir;
    process.env[SYNTH_CACHE_DIR_ENV] = dir;
    prepareSynthCache({ dir, root: PROJECT_ROOT, generations: TEST_CONFIGURATIONS });
    teardowns.push(() => {
      rmSync(dir, { recursive: true, force: true });
      delete state[OWNED];
    });
  }
  if (project.name === 'browser' && !process.env[UNPACKED_CHROMIUM_ENV]) {
    // Unpacked once, before any worker starts: two files that unpack it at once race (one can
    // start the binary while the other still writes it: spawn ETXTBSY). The workers inherit it.
    process.env[UNPACKED_CHROMIUM_ENV] = await chromium.executablePath();
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
