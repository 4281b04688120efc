import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdjustableClock } from '../../functions/shared/clock.js';
import { type LocalPipeline, startLocalPipeline } from '../../local/pipeline.js';
import { runRequestFile } from '../../local/request-file-run.js';

/**
 * `npm run generate -- --from FILE` shows the file's batch as one progress bar on a terminal,
 * then each line's outcome, and names the batch in its `--json` document.
 */
let dir: string;
let pipeline: LocalPipeline;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'request-file-progress-'));
  pipeline = await startLocalPipeline({
    s3Directory: path.join(dir, 's3'),
    // Its own DynamoDB in memory and webhook secret: nothing of the checkout's .local/ is read
    // or changed.
    dynamoDirectory: null,
    webhookSecret: 'whsec_cmVxdWVzdC1maWxlLXByb2dyZXNzLXRlc3QtMDE=',
    virtualWaits: new AdjustableClock(),
    retryIntervalMs: 5,
  });
  // Synthesizing the stack and starting s3rver take minutes when every core is busy.
}, 300_000);

afterAll(async () => {
  await pipeline?.close();
  await rm(dir, { recursive: true, force: true });
});

async function run(key: string, body: string, options: { json: boolean; tty: boolean }) {
  const captured = { stdout: '', stderr: '' };
  const outcome = await runRequestFile(pipeline, key, Buffer.from(body), {
    io: {
      stdout: (text) => {
        captured.stdout += text;
      },
      stderr: (text) => {
        captured.stderr += text;
      },
      stderrIsTTY: options.tty,
    },
    json: options.json,
    outDir: path.join(dir, 'out'),
    pollIntervalMs: 20,
  });
  return { ...outcome, ...captured };
}

const FILE = [
  '{"prompt": "a red fox", "size": "512*512"}',
  '{"prompt": "x", "n": 9}',
  '{"prompt": "a blue heron", "size": "512*512"}',
  '',
].join('\n');

describe('runRequestFile: the batch', { timeout: 120_000 }, () => {
  it('shows one bar redrawn in place on a terminal, then each line’s outcome', async () => {
    const { exitCode, stderr } = await run('requests/progress-tty.jsonl', FILE, { json: false, tty: true });

    expect(exitCode).toBe(2);
    const [before, afterBar] = stderr.split(/\n(?= {2}line 1: )/);
    const [header, rejected, ...progress] = (before ?? '').split('\n');
    expect(header).toMatch(
      /^requests\/progress-tty\.jsonl: batch file-[\w-]+, 2 generation\(s\) started, 1 line\(s\) rejected$/,
    );
    expect(rejected).toBe('  line 2: n: must be at most 4');
    // Every progress update rewrites the one line: nothing but the bar between the header and the outcomes.
    expect(progress).toHaveLength(1);
    const draws = (progress[0] ?? '').split('\r\x1b[2K');
    expect(draws[0]).toBe('');
    expect(draws.at(-1)).toMatch(/^\w+ \[█{24}\] 3\/3 100% .*· 1 rejected$/);
    expect(afterBar).toMatch(/^ {2}line 1: succeeded \(file-[\w-]+-1\)\n/);
    expect(afterBar).toMatch(/\n {2}line 3: succeeded \(file-[\w-]+-3\)\n/);
  });

  it('names the batch, its status and its final counts in the --json document, beside the results', async () => {
    const { document, stderr } = await run('requests/progress-json.jsonl', FILE, { json: true, tty: true });

    expect(stderr).toBe('');
    const { results, batch } = document as { results: any[]; batch: any };
    const id = (results[0] as { id: string }).id.replace(/-1$/, '');
    expect(batch).toEqual({
      id,
      links: { self: `/v1/batches/${id}` },
      status: 'completed',
      counts: {
        total: 3,
        rejected: 1,
        waiting: 0,
        running: 0,
        succeeded: 2,
        partial: 0,
        failed: 0,
        canceled: 0,
      },
    });
    expect(results.map((line) => line.status)).toEqual(['succeeded', 'rejected', 'succeeded']);
  });
});
