import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { STACK_ID } from '../../infra/app.js';
import { EM_AARCH64, functionBundles, sharpArm64Problems, sharpInBundle } from '../../infra/bundle-check.js';
import { createLocalRunner, stateMachineDefinition } from '../../local/runner.js';
import { cdkSynthOutput } from '../support/cdk-synth.js';

let outdir: string;

/**
 * One real `cdk synth` with bundling for every test here, started by the global setup when the
 * infra project runs (test/support/cdk-synth.ts): over 90 s when the shared machine is busy.
 * Persist's `npm ci` for linux-arm64 reads the npm cache first (see docs/persist.md); the synth
 * itself fails, naming the fix, when that leaves sharp's arm64 binaries out (infra/bundle-check.ts).
 */
beforeAll(async () => {
  outdir = await cdkSynthOutput(inject('cdkSynthDir'));
}, 300_000);

describe('npx cdk synth', () => {
  it('bundles the Lambdas and yields the very definition the local runner executes', async () => {
    const template = JSON.parse(await readFile(path.join(outdir, `${STACK_ID}.template.json`), 'utf8'));

    const runner = createLocalRunner({
      dashscope: { baseUrl: 'http://127.0.0.1:1/api/v1', apiKey: 'unused' },
      s3: { client: new S3Client({ region: 'us-east-1' }), bucket: 'unused' },
    });

    expect(runner.definition).toEqual(stateMachineDefinition(template));
    const assets = JSON.parse(await readFile(path.join(outdir, `${STACK_ID}.assets.json`), 'utf8'));
    expect(Object.keys(assets.files).length).toBeGreaterThanOrEqual(3);
  });

  it("puts sharp's linux-arm64 glibc addon and libvips in Persist's bundle, where its import resolves them", async () => {
    const persist =
      [...functionBundles(outdir, STACK_ID)].find(([id]) => id.startsWith('FunctionsPersist'))?.[1] ?? '';

    const sharp = sharpInBundle(persist);

    expect(sharp.sharpEntry.startsWith(path.join(persist, 'node_modules', 'sharp') + path.sep)).toBe(true);
    for (const native of [sharp.addon, sharp.libvips]) {
      expect(native.file.startsWith(persist + path.sep)).toBe(true);
      expect({ bits: native.bits, machine: native.machine, needsGlibc: native.needsGlibc }).toEqual({
        bits: 64,
        machine: EM_AARCH64,
        needsGlibc: true,
      });
    }
    expect(sharp.addonLibc).toEqual(['glibc']);
    expect(sharpArm64Problems(persist)).toEqual([]);
    expect(existsSync(path.join(persist, 'node_modules', '@img', 'sharp-linux-x64'))).toBe(false);
  });

  it('installs sharp beside no other function', async () => {
    const others = [...functionBundles(outdir, STACK_ID)].filter(
      ([id]) => !id.startsWith('FunctionsPersist'),
    );

    expect(others.length).toBeGreaterThan(0);
    for (const [, bundle] of others) expect(existsSync(path.join(bundle, 'node_modules'))).toBe(false);
  });
});
