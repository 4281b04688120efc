import { execFile } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * `npm run generate` and `npx sd35 generate` as processes: what a user or a script sees on stdout
 * and stderr, and the exit code.
 */
const ROOT = path.join(import.meta.dirname, '..', '..');
// As `npm run generate` runs it.
const TSX_ESM = 'tsx/esm';
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

const generate = (...args: string[]) => run(['--import', TSX_ESM, 'local/generate.ts', ...args]);
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
