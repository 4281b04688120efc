import { defineConfig } from 'vitest/config';

/**
 * The suite in five projects, all run by `npm test` (one project: `vitest run --project unit`).
 * Timeouts only catch a hang: they are generous because the suite must pass, slower, on a 2-core
 * machine that other processes keep busy (a synthesis inside a test takes tens of seconds then).
 */
export default defineConfig({
  test: {
    setupFiles: ['local/polyfills.ts'],
    // One synth cache per run: each configuration is synthesized once per run, not once per file.
    globalSetup: ['test/support/global-setup.ts'],
    // Three workers on two cores, shared by all projects: many files wait on real time (stalls,
    // timeouts, a browser, child processes), and a third worker keeps both cores busy meanwhile
    // (measured: the cores 85 % busy with two workers, 96 % with three).
    maxWorkers: 3,
    // Node 20 is supported here until the SDK drops it; the warning is in the README, not every test log.
    env: {
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      // The in-process syntheses skip CDK's built-in CloudFormation validation (about 3 s each, a
      // WebAssembly engine; it never changes the template). test/infra/synth.test.ts's real
      // `cdk synth` turns it back on, as `cdk deploy` runs it.
      CDK_VALIDATION: 'false',
    },
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: [
            'test/unit/**/*.test.ts',
            'test/api/**/*.test.ts',
            'test/console/**/*.test.ts',
            'test/contract/**/*.test.ts',
            'test/emulator/**/*.test.ts',
            'test/bench/**/*.test.ts',
          ],
          exclude: ['test/unit/synth-cache.test.ts'],
          // Pure or self-contained files (no vi.mock; stubbed env and spies are restored), so they
          // share a module graph per worker: the AWS SDK, zod and hono are imported once per worker,
          // not once per file (measured: about 70 s of import time saved over these 54 files).
          isolate: false,
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'infra',
          // CDK: in-process syntheses, a real `cdk synth`, the synth cache against the real stack.
          include: ['test/infra/**/*.test.ts', 'test/unit/synth-cache.test.ts'],
          // Every file builds its own App (test/infra/template.ts caches read-only results), so
          // they share aws-cdk-lib per worker: imported once, not once per file (measured: about
          // 80 s of import time saved when the machine is busy).
          isolate: false,
          testTimeout: 300_000,
          hookTimeout: 300_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'e2e',
          // The synthesized workflow on the local engine, s3rver, dynalite, the emulator, real HTTP.
          include: ['test/e2e/**/*.test.ts', 'test/integration/**/*.test.ts'],
          exclude: ['test/e2e/console-*.test.ts', 'test/e2e/browser-*.test.ts'],
          // Every file starts its own servers, emulator and runner and closes them in afterAll, and
          // none mocks a module: they share the module graph per worker too (measured, this project
          // alone: 51 s wall and 87 s CPU isolated, 40 s and 66 s shared).
          isolate: false,
          testTimeout: 300_000,
          hookTimeout: 300_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'browser',
          // A real Chromium against the console, token and OIDC sign-in (`npm run test:browser`),
          // and the launcher itself (two browsers at once).
          include: ['test/e2e/console-*.test.ts', 'test/e2e/browser-*.test.ts'],
          // As e2e: each file starts and closes its own API, issuer and browser.
          isolate: false,
          testTimeout: 300_000,
          hookTimeout: 300_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'faults',
          // The fault matrix, the admission faults and the 100-generation load case.
          include: ['test/faults/**/*.test.ts'],
          // As e2e: each file starts and closes its own suite of servers.
          isolate: false,
          testTimeout: 300_000,
          hookTimeout: 300_000,
        },
      },
    ],
  },
});
