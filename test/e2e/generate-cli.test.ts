import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * `npm run generate` and `npx sd35 generate` as processes: what a user or a script sees on stdout
 * and stderr, and the exit code.
 */
const ROOT = path.join(import.meta.dirname, '..', '..');
const TSX = path.join(ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs');
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'generate-cli-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface Exit {
  code: number;
  stdout: string;
  stderr: string;
}

function run(args: string[]): Promise<Exit> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      args,
      { cwd: ROOT, env: { ...process.env, SD35_API_URL: 'http://127.0.0.1:9' } },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code) : 0, stdout, stderr }),
    );
  });
}

const generate = (...args: string[]) => run([TSX, 'local/generate.ts', ...args]);
const sd35 = (...args: string[]) => run(['bin/sd35.js', ...args]);

/** stderr without Node's own warnings (the SDK's Node-version notice). */
function errorLines(stderr: string): string[] {
  return stderr.split('\n').filter((line) => line.startsWith('error:'));
}

describe('npm run generate', () => {
  it('prints exactly one JSON document on stdout for a usage error under --json', async () => {
    const { code, stdout } = await generate('cat', '--foo', '--json');

    expect(code).toBe(2);
    expect(JSON.parse(stdout)).toEqual({
      id: '',
      status: 'failed',
      images: [],
      manifest: null,
      error: { type: 'usage', message: '--foo: unknown option (see npm run generate -- --help)' },
    });
  });

  it('names the flag and the reason in one line for --seed -1, without the usage text', async () => {
    const { code, stderr } = await generate('cat', '--seed', '-1');

    expect(code).toBe(2);
    expect(errorLines(stderr)).toEqual(['error: invalid request: seed: must be at least 0']);
    expect(stderr).not.toContain('Usage:');
  });

  it('prints where each request-file line’s images are, in JSON', async () => {
    const file = path.join(dir, 'batch.jsonl');
    await writeFile(file, '{"prompt": "a red fox", "size": "512*512"}\n{"prompt": "x", "n": 9}\n');
    const out = path.join(dir, 'from');

    const { code, stdout } = await generate('--from', file, '--out', out, '--json');

    const { results } = JSON.parse(stdout);
    expect(code).toBe(2);
    expect(results[1]).toMatchObject({ line: 2, status: 'rejected' });
    expect(results[0]).toMatchObject({ line: 1, status: 'succeeded' });
    const [image] = results[0].images;
    expect(image.path).toBe(path.join(out, results[0].id, '0.png'));
    expect((await readFile(image.path)).subarray(1, 4).toString()).toBe('PNG');
    expect((await stat(results[0].manifest.path)).isFile()).toBe(true);
  }, 300_000);

  it('prints where each request-file line’s images are, in text', async () => {
    const file = path.join(dir, 'one.json');
    await writeFile(file, '{"prompt": "a blue heron", "size": "512*512"}');
    const out = path.join(dir, 'from-text');

    const { code, stderr } = await generate('--from', file, '--out', out);

    expect(code).toBe(0);
    expect(stderr).toMatch(new RegExp(`generations/\\S+/0\\.png {2}→ {2}${out}/\\S+/0\\.png`));
  }, 300_000);
});

describe('npx sd35 generate', () => {
  it('exits 2 for invalid input, as npm run generate does', async () => {
    const { code, stderr } = await sd35('generate', 'cat', '--n', '9');

    expect(code).toBe(2);
    expect(errorLines(stderr)).toEqual(['error: invalid request: n: must be at most 4']);
  });

  it('prints exactly one JSON document when the API cannot be reached', async () => {
    const { code, stdout } = await sd35('generate', 'cat', '--json');

    expect(code).toBe(3);
    expect(JSON.parse(stdout).error.type).toBe('unreachable');
  });
});
