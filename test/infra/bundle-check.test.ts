import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { persistSpec } from '../../functions/persist/spec.js';
import { FILL_CACHE_COMMAND } from '../../infra/bundle-check.js';
import { PERSIST_NODE_MODULES } from '../../infra/constructs/functions.js';
import { GenerationFunction } from '../../infra/constructs/generation-function.js';

// Any entry will do, what is checked is the node_modules the bundling installs: a small one keeps
// esbuild's part short.
const ENTRY = path.join(import.meta.dirname, '..', '..', 'functions', 'shared', 'state-names.ts');
const config = {
  logLevel: 'INFO',
  logRetentionDays: 30,
  metricsNamespace: 'Test',
  monitoring: 'lean',
} as const;

let outdir: string | undefined;
afterEach(() => {
  vi.unstubAllEnvs();
  if (outdir) rmSync(outdir, { recursive: true, force: true });
  outdir = undefined;
});

describe("a synth whose Persist bundle lacks sharp's arm64 binaries", () => {
  it('fails, naming the missing packages and the fix', () => {
    // The bundling's `npm ci` leaves the optional platform packages out, as it does offline when
    // the npm cache lacks them (measured: docs/deploy.md), but without touching the network or the
    // cache: esbuild and an `npm ci` of sharp's four other packages from the cache.
    vi.stubEnv('npm_config_omit', 'optional');
    outdir = mkdtempSync(path.join(tmpdir(), 'bundle-check-synth-'));
    const app = new App({ outdir });
    new GenerationFunction(new Stack(app, 'Probe'), 'Persist', {
      config,
      entry: ENTRY,
      nodeModules: PERSIST_NODE_MODULES,
      environment: persistSpec.encode({ BUCKET_NAME: 'probe-bucket' }),
    });

    expect(() => app.synth()).toThrow(
      expect.objectContaining({
        message: expect.stringMatching(
          new RegExp(
            [
              "\\[Probe/Persist\\] Persist's bundle \\(.*asset\\.[0-9a-f]+\\) lacks sharp's linux-arm64 binaries",
              "  - node_modules/@img/sharp-linux-arm64@[\\d.]+ is missing \\(sharp's addon, lib/\\*\\.node\\)",
              '  - node_modules/@img/sharp-libvips-linux-arm64@[\\d.]+ is missing',
            ].join('[^]*'),
          ),
        ),
      }),
    );
    expect(() => app.synth({ force: true })).toThrow(FILL_CACHE_COMMAND);
  });
});
