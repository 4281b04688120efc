import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_OUT_DIR, type Sd35Deps, sd35 } from '../../local/cli/main.js';
import type { LocalApi } from '../../local/local-api.js';
import { startTestApi, type TestApi } from '../support/local-api.js';

/**
 * The `sd35` CLI end to end against the local HTTP API (as `npm start` serves it), in-process:
 * every command, its --json document, and its exit code.
 */
const ROOT = path.join(import.meta.dirname, '..', '..');
const token = 'test-token-for-cli-e2e';
let dir: string;
let api: LocalApi;

let testApi: TestApi;

beforeAll(async () => {
  testApi = await startTestApi('cli-e2e-', { apiToken: token });
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
  opened: string[];
}

async function run(argv: string[], env: Sd35Deps['env'] = { SD35_API_TOKEN: token }): Promise<Run> {
  const result: Run = { code: -1, stdout: '', stderr: '', opened: [] };
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
    openUrl: async (url) => {
      result.opened.push(url);
    },
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

async function apiJson(pathAndQuery: string, method = 'GET'): Promise<unknown> {
  const response = await fetch(`${api.url}${pathAndQuery}`, {
    method,
    headers: { authorization: `Bearer ${token}` },
  });
  return response.json();
}

async function generated(out: string, extra: string[] = []): Promise<any> {
  const result = await run([
    'generate',
    'a lighthouse at dusk',
    '--size',
    '512*512',
    '--out',
    out,
    '--json',
    ...extra,
  ]);
  expect(result.code).toBe(0);
  return document(result.stdout);
}

// Each generation runs the whole local workflow: slow when every core is busy.
describe('sd35 generate', { timeout: 120_000 }, () => {
  it('prints one document with each image path, whose bytes equal the stored object', async () => {
    const out = path.join(dir, 'generate');

    const doc = await generated(out, ['--n', '2']);

    expect(doc).toMatchObject({ status: 'succeeded', dir: path.join(out, doc.id), failedImages: [] });
    expect(doc.images).toHaveLength(2);
    for (const image of doc.images) {
      const object = await api.s3.client.send(
        new GetObjectCommand({ Bucket: api.s3.bucket, Key: image.key }),
      );
      const stored = Buffer.from(await object.Body!.transformToByteArray());
      expect((await readFile(image.path)).equals(stored)).toBe(true);
    }
  });

  it('exits 2 on invalid input, naming each bad field, without calling the API', async () => {
    const result = await run(['generate', 'cat', '--n', '9', '--seed', '-1'], {
      SD35_API_URL: 'http://127.0.0.1:9',
    });

    expect(result.code).toBe(2);
    expect(result.stderr).toBe('error: invalid request: n: must be at most 4; seed: must be at least 0\n');
  });

  it('exits 2 with one JSON document for an unknown flag', async () => {
    const result = await run(['generate', 'cat', '--foo', '--json']);

    expect(result.code).toBe(2);
    expect(document(result.stdout)).toEqual({
      error: { type: 'usage', message: '--foo: unknown option (see sd35 generate --help)' },
    });
  });

  it('names SD35_API_URL, not --api, when the variable holds a bad URL', async () => {
    const result = await run(['list'], { SD35_API_URL: 'notaurl', SD35_API_TOKEN: token });
    const flagged = await run(['list', '--api', 'notaurl'], { SD35_API_TOKEN: token });

    expect(result.code).toBe(2);
    expect(result.stderr).toBe('error: SD35_API_URL: "notaurl" is not a URL\n');
    expect(flagged.stderr).toBe('error: --api: "notaurl" is not a URL\n');
  });

  it('writes under the git-ignored .local/generations by default', async () => {
    const { stdout } = await promisify(execFile)('git', ['check-ignore', '--no-index', DEFAULT_OUT_DIR], {
      cwd: ROOT,
    });

    expect(DEFAULT_OUT_DIR).toBe(path.join(ROOT, '.local', 'generations'));
    expect(stdout.trim()).not.toBe('');
  });
});

describe('sd35 get, list, cancel, download', { timeout: 120_000 }, () => {
  it('get --json prints the API’s own answer', async () => {
    const { id } = await generated(path.join(dir, 'get'));

    const result = await run(['get', id, '--json']);

    expect(result.code).toBe(0);
    const { images: printedImages, ...printed } = document(result.stdout);
    const { images: ownImages, ...own } = (await apiJson(`/v1/generations/${id}`)) as any;
    // Presigned URLs are signed afresh on every answer; everything else is the same.
    expect(printed).toEqual(own);
    expect(printedImages.map((i: any) => i.key)).toEqual(ownImages.map((i: any) => i.key));
  });

  it('get exits 2 for a generation that does not exist', async () => {
    const result = await run(['get', 'gen-does-not-exist']);

    expect(result.code).toBe(2);
    expect(result.stderr).toBe('error: 404 No generation "gen-does-not-exist"\n');
  });

  it('list --json passes --status and --limit and prints the API’s own answer', async () => {
    await generated(path.join(dir, 'list'));
    await generated(path.join(dir, 'list'));

    const result = await run(['list', '--status', 'succeeded', '--limit', '1', '--json']);

    expect(result.code).toBe(0);
    const printed = document(result.stdout);
    expect(printed.data).toHaveLength(1);
    expect(printed.data[0].status).toBe('succeeded');
    expect(printed.nextCursor).toEqual(expect.any(String));
    const next = await run([
      'list',
      '--status',
      'succeeded',
      '--limit',
      '1',
      '--cursor',
      printed.nextCursor,
      '--json',
    ]);
    expect(document(next.stdout).data[0].id).not.toBe(printed.data[0].id);
  });

  it('list exits 2 when the API refuses the query', async () => {
    const result = await run(['list', '--limit', '99']);

    expect(result.code).toBe(2);
    expect(result.stderr).toContain('limit: must be at most 50');
  });

  it('cancel --json prints the API’s answer', async () => {
    const { id } = await generated(path.join(dir, 'cancel'));

    const result = await run(['cancel', id, '--json']);

    expect(result.code).toBe(0);
    expect(document(result.stdout)).toMatchObject({ id, status: 'succeeded' });
  });

  it('download writes the images into <out>/<id>/ and prints their paths', async () => {
    const first = await generated(path.join(dir, 'first'));
    const out = path.join(dir, 'download');

    const result = await run(['download', first.id, '--out', out]);

    expect(result.code).toBe(0);
    const file = path.join(out, first.id, '0.png');
    expect(result.stdout).toBe(`${file}  (${first.images[0].bytes} bytes, seed ${first.images[0].seed})\n`);
    expect((await readFile(file)).equals(await readFile(first.images[0].path))).toBe(true);
  });

  it('download exits 2 for an id the API cannot have issued', async () => {
    const result = await run(['download', '../etc', '--json']);

    expect(result.code).toBe(2);
    expect(document(result.stdout).error.type).toBe('invalid_request');
  });
});

describe('sd35 failures of the API itself', () => {
  it('exits 3 when the token is wrong', async () => {
    const result = await run(['list', '--json'], { SD35_API_TOKEN: 'wrong' });

    expect(result.code).toBe(3);
    expect(document(result.stdout).error.type).toBe('unauthorized');
  });

  it('exits 3 with one JSON document when the API cannot be reached', async () => {
    const result = await run(['get', 'gen-1', '--json', '--api', 'http://127.0.0.1:9']);

    expect(result.code).toBe(3);
    expect(document(result.stdout).error).toMatchObject({ type: 'unreachable' });
  });
});

describe('sd35 open, --version, --help', () => {
  it('opens and prints the console page of a generation', async () => {
    const result = await run(['open', 'gen-1']);

    expect(result.code).toBe(0);
    expect(result.stdout).toBe(`${api.url}/console/generations/gen-1\n`);
    expect(result.opened).toEqual([`${api.url}/console/generations/gen-1`]);
  });

  it('opens the console itself without an id, keeping the stage of the base URL', async () => {
    const result = await run([
      'open',
      '--json',
      '--api',
      'https://x.execute-api.eu-west-1.amazonaws.com/prod/',
    ]);

    expect(document(result.stdout)).toEqual({
      url: 'https://x.execute-api.eu-west-1.amazonaws.com/prod/console/',
    });
  });

  it('prints the URL and exits 0 when no browser can be opened', async () => {
    const result = await sd35(['open'], {
      io: { stdout: () => {}, stderr: () => {} },
      env: {},
      openUrl: async () => {
        throw new Error('xdg-open: spawn xdg-open ENOENT');
      },
    });

    expect(result).toBe(0);
  });

  it('prints the version of package.json', async () => {
    const { version } = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8'));

    expect((await run(['--version'])).stdout).toBe(`${version}\n`);
  });

  it('answers --help on every command with exit 0', async () => {
    for (const command of ['generate', 'get', 'list', 'cancel', 'download', 'open']) {
      const result = await run([command, '--help']);
      expect(result.code).toBe(0);
      expect(result.stdout).toContain(`Usage: sd35 ${command}`);
    }
  });

  it('exits 2 for an unknown command, in one line', async () => {
    const result = await run(['frobnicate']);

    expect(result.code).toBe(2);
    expect(result.stderr).toBe('error: "frobnicate": unknown command (see sd35 --help)\n');
  });
});
