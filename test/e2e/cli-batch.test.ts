import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Sd35Deps, sd35 } from '../../local/cli/main.js';
import type { LocalApi } from '../../local/local-api.js';
import { startTestApi, type TestApi } from '../support/local-api.js';
import { waitFor } from '../support/wait-for.js';

/**
 * `sd35 batch …` end to end against the local HTTP API (as `npm start` serves it), in-process: a
 * file with an invalid line sent as one batch, followed to its end, and its results downloaded.
 */
let dir: string;
let api: LocalApi;
let testApi: TestApi;

beforeAll(async () => {
  testApi = await startTestApi('cli-batch-e2e-');
  ({ api, dir } = testApi);
  // Synthesizing the stack and starting s3rver take minutes when every core is busy.
}, 300_000);

afterAll(async () => {
  await testApi?.close();
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(argv: string[], env: Sd35Deps['env'] = {}): Promise<Run> {
  const result: Run = { code: -1, stdout: '', stderr: '' };
  result.code = await sd35(argv, {
    io: {
      stdout: (text) => {
        result.stdout += text;
      },
      stderr: (text) => {
        result.stderr += text;
      },
    },
    env: { SD35_API_URL: api.url, ...env },
    pollIntervalMs: 20,
  });
  return result;
}

/** Exactly one JSON document on stdout, parsed. */
function document(stdout: string): any {
  const lines = stdout.split('\n').filter((line) => line !== '');
  expect(lines).toHaveLength(1);
  return JSON.parse(lines[0] ?? '');
}

/** Three requests, the second of which asks for 9 images (at most 4). */
async function fileWithAnInvalidLine(name: string): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(
    file,
    [
      '{"prompt": "a lighthouse at dusk", "size": "512*512"}',
      '{"prompt": "a red fox", "size": "512*512", "n": 9}',
      '{"prompt": "a pine forest", "size": "512*512", "seed": 7}',
      '',
    ].join('\n'),
  );
  return file;
}

// Each line runs the whole local workflow: slow when every core is busy.
describe('sd35 batch', { timeout: 300_000 }, () => {
  it('create --wait --json follows the batch to its end: exit 2 for the rejected line, its final counts', async () => {
    const file = await fileWithAnInvalidLine('invalid-line.jsonl');

    const result = await run(['batch', 'create', file, '--wait', '--json', '--metadata', 'project=e2e']);

    expect(result.code).toBe(2);
    const batch = document(result.stdout);
    expect(batch).toMatchObject({
      id: expect.stringMatching(/^batch-/),
      status: 'completed',
      source: 'cli',
      priority: 'batch',
      completedAt: expect.any(String),
      metadata: { project: 'e2e' },
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
    expect(batch.rejected).toEqual([
      {
        line: 2,
        error: {
          type: 'invalid_request',
          message: 'line 2: n: must be at most 4',
          details: [{ field: 'n', message: 'must be at most 4' }],
        },
      },
    ]);
    // The last view is the API's own answer, plus the lines it rejected at the start.
    const { rejected: _rejected, ...view } = batch;
    expect(await (await fetch(`${api.url}/v1/batches/${batch.id}`)).json()).toEqual(view);
    expect(result.stderr).toBe(`error: batch ${batch.id}: 1 line rejected\n`);
  });

  it('results writes the results file: one line per request line, the rejected one with its reason', async () => {
    const file = await fileWithAnInvalidLine('results.jsonl');
    const created = await run(['batch', 'create', file, '--json']);
    expect(created.code).toBe(2);
    const { id } = document(created.stdout);
    await waitFor(
      async () => {
        const got = await run(['batch', 'get', id, '--json']);
        return got.code === 0 && document(got.stdout).status === 'completed';
      },
      { what: `batch ${id} to complete`, timeoutMs: 240_000, intervalMs: 250 },
    );
    const out = path.join(dir, 'out');

    const result = await run(['batch', 'results', id, '--out', out, '--json']);

    expect(result.code).toBe(0);
    const written = document(result.stdout);
    const resultsFile = path.join(out, id, 'results.jsonl');
    expect(written).toEqual({
      id,
      key: `batches/${id}/results.jsonl`,
      path: resultsFile,
      bytes: expect.any(Number),
      lines: 3,
      statuses: { succeeded: 2, rejected: 1 },
    });
    const lines = (await readFile(resultsFile, 'utf8'))
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line));
    expect(lines).toMatchObject([
      { line: 1, id: `${id}-1`, status: 'succeeded', images: [`generations/${id}-1/0.png`] },
      {
        line: 2,
        status: 'rejected',
        error: { type: 'invalid_request', message: 'line 2: n: must be at most 4' },
      },
      { line: 3, id: `${id}-3`, status: 'succeeded', seeds: [7] },
    ]);
    expect(written.bytes).toBe((await readFile(resultsFile)).length);
  });

  it('get --wait prints the batch in text, list shows it, cancel of an ended batch changes nothing', async () => {
    const file = path.join(dir, 'one.json');
    await writeFile(file, JSON.stringify([{ prompt: 'a blue heron', size: '512*512' }]));
    const created = await run(['batch', 'create', file, '--priority', 'interactive', '--json']);
    expect(created.code).toBe(0);
    const { id } = document(created.stdout);

    const waited = await run(['batch', 'get', id, '--wait']);
    const listed = await run(['batch', 'list', '--limit', '50', '--json']);
    const cancelled = await run(['batch', 'cancel', id, '--json']);

    expect(waited.code).toBe(0);
    expect(waited.stdout.split('\n')[0]).toBe(`${id}: completed · 1 line: 1 succeeded`);
    expect(waited.stdout).toContain(`  results: sd35 batch results ${id}\n`);
    // Not a terminal: plain progress lines, the last one at the end.
    expect(waited.stderr).toMatch(/\] completed · 1\/1 done/);
    expect(document(listed.stdout).data.map((batch: { id: string }) => batch.id)).toContain(id);
    expect(cancelled.code).toBe(0);
    expect(document(cancelled.stdout)).toMatchObject({ id, status: 'completed', priority: 'interactive' });
  });

  it('results exits 2 for a batch that does not exist', async () => {
    const result = await run(['batch', 'results', 'batch-does-not-exist']);

    expect(result.code).toBe(2);
    expect(result.stderr).toBe('error: 404 No batch "batch-does-not-exist"\n');
  });
});
