import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdjustableClock } from '../../functions/shared/clock.js';
import { type LocalPipeline, startLocalPipeline } from '../../local/pipeline.js';
import { runRequestFile } from '../../local/request-file-run.js';

/** `npm run generate -- --from FILE`: each line's outcome and where its images are. */
let dir: string;
let pipeline: LocalPipeline;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'request-file-run-'));
  pipeline = await startLocalPipeline({
    s3Directory: path.join(dir, 's3'),
    // Its own DynamoDB in memory and webhook secret: nothing of the checkout's .local/ is read
    // or changed.
    dynamoDirectory: null,
    webhookSecret: 'whsec_cmVxdWVzdC1maWxlLXJ1bi10ZXN0LXNlY3JldC0wMQ==',
    virtualWaits: new AdjustableClock(),
    retryIntervalMs: 5,
  });
  // Synthesizing the stack and starting s3rver take minutes when every core is busy.
}, 300_000);

afterAll(async () => {
  await pipeline?.close();
  await rm(dir, { recursive: true, force: true });
});

interface Captured {
  stdout: string;
  stderr: string;
}

async function run(key: string, body: string, json: boolean, outDir: string) {
  const captured: Captured = { stdout: '', stderr: '' };
  const outcome = await runRequestFile(pipeline, key, Buffer.from(body), {
    io: {
      stdout: (text) => {
        captured.stdout += text;
      },
      stderr: (text) => {
        captured.stderr += text;
      },
    },
    json,
    outDir,
  });
  return { ...outcome, ...captured };
}

describe('runRequestFile', { timeout: 120_000 }, () => {
  it('returns each line’s image paths and manifest in the JSON document', async () => {
    const out = path.join(dir, 'json');

    const { exitCode, document, stderr } = await run(
      'requests/batch.jsonl',
      '{"prompt": "a red fox", "size": "512*512"}\n',
      true,
      out,
    );

    expect(exitCode).toBe(0);
    expect(stderr).toBe('');
    const [line] = (document as { results: any[] }).results;
    // The file is a batch `file-<hash>`; its line 1 is the generation `file-<hash>-1`.
    expect(line).toMatchObject({
      line: 1,
      id: expect.stringMatching(/^file-[\w-]{40}-1$/),
      status: 'succeeded',
    });
    expect(line.images[0].path).toBe(path.join(out, line.id, '0.png'));
    expect((await readFile(line.images[0].path)).subarray(1, 4).toString()).toBe('PNG');
    expect((await stat(line.manifest.path)).isFile()).toBe(true);
  });

  it('prints each line’s image keys and paths in text', async () => {
    const out = path.join(dir, 'text');

    const { stderr, document } = await run(
      'requests/one.json',
      '{"prompt": "a blue heron", "size": "512*512"}',
      false,
      out,
    );

    const [line] = (document as { results: any[] }).results;
    expect(stderr).toContain(`    ${line.images[0].key}  →  ${path.join(out, line.id, '0.png')}\n`);
    expect(stderr).toContain(`    ${line.manifest.key}  →  ${path.join(out, line.id, 'manifest.json')}\n`);
  });

  it('exits 2 when a line was rejected, and still runs the valid ones', async () => {
    const { exitCode, document } = await run(
      'requests/mixed.jsonl',
      '{"prompt": "a pine forest", "size": "512*512"}\n{"prompt": "x", "n": 9}\n',
      true,
      path.join(dir, 'mixed'),
    );

    expect(exitCode).toBe(2);
    expect((document as { results: any[] }).results).toMatchObject([
      { line: 1, id: expect.stringMatching(/^file-[\w-]{40}-1$/), status: 'succeeded' },
      { line: 2, status: 'rejected', error: { message: expect.stringContaining('n: must be at most 4') } },
    ]);
  });
});
