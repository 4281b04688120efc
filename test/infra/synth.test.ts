import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STACK_ID } from '../../infra/app.js';
import { createLocalRunner, stateMachineDefinition } from '../../local/runner.js';

const run = promisify(execFile);
let outdir: string;

beforeAll(async () => {
  outdir = await mkdtemp(path.join(tmpdir(), 'cdk-out-'));
});

afterAll(async () => {
  await rm(outdir, { recursive: true, force: true });
});

describe('npx cdk synth', () => {
  it('runs offline, bundles the three Lambdas, and yields the very definition the local runner executes', async () => {
    await run('npx', ['cdk', 'synth', '--quiet', '--output', outdir], {
      cwd: path.join(import.meta.dirname, '..', '..'),
    });
    const template = JSON.parse(await readFile(path.join(outdir, `${STACK_ID}.template.json`), 'utf8'));

    const runner = createLocalRunner({
      dashscope: { baseUrl: 'http://127.0.0.1:1/api/v1', apiKey: 'unused' },
      s3: { client: new S3Client({ region: 'us-east-1' }), bucket: 'unused' },
    });

    expect(runner.definition).toEqual(stateMachineDefinition(template));
    const assets = JSON.parse(await readFile(path.join(outdir, `${STACK_ID}.assets.json`), 'utf8'));
    expect(Object.keys(assets.files).length).toBeGreaterThanOrEqual(3);
  }, 300_000); // a real `cdk synth` with bundling: over 90 s when the shared machine is busy
});
