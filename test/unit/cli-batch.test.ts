import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { batchBodyOf, batchFileKind, batchSettingsOf } from '../../local/cli/batch-file.js';
import { InvalidInputError, UsageError } from '../../local/cli/errors.js';
import { sd35 } from '../../local/cli/main.js';

/** `sd35 batch …`: its arguments, the body it sends, and how it follows a batch, against a fake API. */
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'cli-batch-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function errorOf(run: () => unknown): Error {
  try {
    run();
  } catch (error) {
    return error as Error;
  }
  throw new Error('did not throw');
}

describe('batchSettingsOf', () => {
  it('reads --priority, --webhook-url and each --metadata key=value (a value may hold "=")', () => {
    expect(
      batchSettingsOf({
        priority: 'interactive',
        webhookUrl: 'https://example.com/hook',
        metadata: ['project=demo', 'query=a=b'],
      }),
    ).toEqual({
      priority: 'interactive',
      webhook_url: 'https://example.com/hook',
      metadata: { project: 'demo', query: 'a=b' },
    });
    expect(batchSettingsOf({})).toEqual({});
  });

  it('names the flag of a priority that is neither lane', () => {
    const error = errorOf(() => batchSettingsOf({ priority: 'high' }));

    expect(error).toBeInstanceOf(UsageError);
    expect(error.message).toBe('--priority: must be "interactive" or "batch", got "high"');
  });

  it('refuses metadata that is not key=value, or breaks the API’s limits', () => {
    expect(errorOf(() => batchSettingsOf({ metadata: ['project'] })).message).toBe(
      '--metadata: needs key=value, got "project"',
    );
    expect(errorOf(() => batchSettingsOf({ metadata: ['=demo'] })).message).toBe(
      '--metadata: needs key=value, got "=demo"',
    );
    expect(errorOf(() => batchSettingsOf({ metadata: [`${'k'.repeat(65)}=v`] })).message).toBe(
      `--metadata: "${'k'.repeat(65)}": a key is at most 64 characters`,
    );
    expect(errorOf(() => batchSettingsOf({ metadata: [`k=${'v'.repeat(513)}`] })).message).toBe(
      '--metadata: "k": a value is at most 512 characters',
    );
    const seventeen = Array.from({ length: 17 }, (_, i) => `k${i}=v`);
    expect(errorOf(() => batchSettingsOf({ metadata: seventeen })).message).toBe(
      '--metadata: at most 16 keys',
    );
  });
});

describe('batchFileKind', () => {
  it('sends .jsonl and .ndjson line by line, .json as one document, and refuses anything else', () => {
    expect(batchFileKind('a/requests.jsonl')).toBe('lines');
    expect(batchFileKind('requests.NDJSON')).toBe('lines');
    expect(batchFileKind('requests.json')).toBe('document');
    const error = errorOf(() => batchFileKind('requests.txt'));
    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error.message).toBe(
      'requests.txt: needs a .jsonl file (one request per line) or a .json file (a list of requests)',
    );
  });
});

describe('batchBodyOf', () => {
  const jsonl = '{"prompt":"a"}\n\nnot json\n{"prompt":"b"}\n';

  it('sends a .jsonl file as it is, as NDJSON, with the priority and the webhook in the query', () => {
    expect(batchBodyOf('r.jsonl', `\uFEFF${jsonl}`, { priority: 'batch', webhook_url: 'https://h' })).toEqual(
      {
        kind: 'ndjson',
        content: jsonl,
        query: { priority: 'batch', webhook_url: 'https://h' },
      },
    );
  });

  it('sends a .jsonl file as one JSON document when it has metadata, warning of blank lines', () => {
    const body = batchBodyOf('r.jsonl', '{"prompt":"a"}\n\n{"prompt":"b"}\n\n', { metadata: { k: 'v' } });

    expect(body).toEqual({
      kind: 'json',
      body: { requests: [{ prompt: 'a' }, { prompt: 'b' }], metadata: { k: 'v' } },
      warning:
        'warning: r.jsonl has blank lines: with --metadata its requests are numbered 1 to 2, blank lines left out',
    });
  });

  it('refuses a .jsonl line that is not JSON when the lines go as one document', () => {
    const error = errorOf(() => batchBodyOf('r.jsonl', jsonl, { metadata: { k: 'v' } }));

    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error.message).toMatch(/^r\.jsonl: line 3 is not valid JSON \(.*\); with --metadata/);
  });

  it('reads a .json list, {requests} with its settings, or one request; the flags win', () => {
    expect(batchBodyOf('r.json', '[{"prompt":"a"}]', { priority: 'interactive' })).toEqual({
      kind: 'json',
      body: { requests: [{ prompt: 'a' }], priority: 'interactive' },
    });
    expect(
      batchBodyOf('r.json', '{"requests":[{"prompt":"a"}],"priority":"batch","metadata":{"a":"1","b":"2"}}', {
        priority: 'interactive',
        metadata: { b: '3' },
      }),
    ).toEqual({
      kind: 'json',
      body: { requests: [{ prompt: 'a' }], priority: 'interactive', metadata: { a: '1', b: '3' } },
    });
    expect(batchBodyOf('r.json', '{"prompt":"a"}', {})).toEqual({
      kind: 'json',
      body: { requests: [{ prompt: 'a' }] },
    });
  });

  it('names the file when a .json file is not JSON, or holds no request', () => {
    expect(errorOf(() => batchBodyOf('r.json', '{', {})).message).toMatch(/^r\.json: is not valid JSON \(/);
    expect(errorOf(() => batchBodyOf('r.json', '42', {})).message).toBe(
      'r.json: must hold a list of requests, {"requests": [...]}, or one request; got 42',
    );
  });
});

interface Sent {
  method: string;
  url: URL;
  headers: Record<string, string>;
  body?: string;
}

/** The view of a batch as the API shows it. */
function view(status: string, counts: Record<string, number>, extra: Record<string, unknown> = {}) {
  const id = 'batch-20260301120000-0a1b2c3d';
  return {
    id,
    status,
    source: 'cli',
    priority: 'batch',
    createdAt: '2026-03-01T12:00:00.000Z',
    counts: {
      total: 3,
      rejected: 0,
      waiting: 0,
      running: 0,
      succeeded: 0,
      partial: 0,
      failed: 0,
      canceled: 0,
      ...counts,
    },
    links: { self: `/v1/batches/${id}` },
    ...extra,
  };
}

/** A fake API: answers each request with the next answer of `answers` for its path. */
function fakeApi(answers: Record<string, Array<{ status: number; body: unknown }>>) {
  const sent: Sent[] = [];
  const fetch = (async (input: string | URL, init?: RequestInit) => {
    const url = new URL(input);
    sent.push({
      method: init?.method ?? 'GET',
      url,
      headers: (init?.headers ?? {}) as Record<string, string>,
      ...(typeof init?.body === 'string' ? { body: init.body } : {}),
    });
    const queue = answers[`${init?.method ?? 'GET'} ${url.pathname}`] ?? answers[url.href];
    const answer = queue && (queue.length > 1 ? queue.shift() : queue[0]);
    if (!answer)
      return new Response('{"error":{"type":"not_found","message":"nothing here"}}', { status: 404 });
    const body = typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body);
    return new Response(body, { status: answer.status });
  }) as typeof globalThis.fetch;
  return { sent, fetch };
}

async function run(argv: string[], fetch: typeof globalThis.fetch, options: { tty?: boolean } = {}) {
  const out = { code: -1, stdout: '', stderr: '' };
  let now = Date.parse('2026-03-01T12:00:00Z');
  out.code = await sd35(argv, {
    io: {
      stdout: (text) => {
        out.stdout += text;
      },
      stderr: (text) => {
        out.stderr += text;
      },
      stderrIsTTY: options.tty ?? false,
    },
    env: { SD35_API_URL: 'http://127.0.0.1:9' },
    fetch,
    pollIntervalMs: 0,
    // Ten seconds between two reads, whatever the machine's speed.
    now: () => {
      now += 10_000;
      return now;
    },
  });
  return out;
}

describe('sd35 batch: arguments', () => {
  const nothing = fakeApi({}).fetch;

  it('names a missing or unknown batch command, and a missing argument', async () => {
    expect((await run(['batch'], nothing)).stderr).toBe(
      'error: missing batch command: create, get, list, cancel or results (see sd35 batch --help)\n',
    );
    expect((await run(['batch', 'frob'], nothing)).stderr).toBe(
      'error: "frob": unknown batch command (see sd35 batch --help)\n',
    );
    const missing = await run(['batch', 'create'], nothing);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe('error: FILE: missing (see sd35 batch create --help)\n');
    expect((await run(['batch', 'get', 'x', '--wat'], nothing)).stderr).toBe(
      'error: --wat: unknown option (see sd35 batch get --help)\n',
    );
  });

  it('answers --help for the group and every command', async () => {
    expect((await run(['batch', '--help'], nothing)).stdout).toContain('Usage: sd35 batch <command>');
    for (const command of ['create', 'get', 'list', 'cancel', 'results']) {
      const result = await run(['batch', command, '--help'], nothing);
      expect(result.code).toBe(0);
      expect(result.stdout).toContain(`Usage: sd35 batch ${command}`);
    }
  });

  it('exits 2 for an id the API cannot have issued, in one JSON document under --json', async () => {
    const result = await run(['batch', 'get', '../x', '--json'], nothing);

    expect(result.code).toBe(2);
    expect(JSON.parse(result.stdout)).toEqual({
      error: { type: 'invalid_request', message: 'ID: must be a batch id ("batch-…" or "file-…")' },
    });
  });

  it('names the file it cannot read', async () => {
    const result = await run(['batch', 'create', path.join(dir, 'none.jsonl')], nothing);

    expect(result.code).toBe(2);
    expect(result.stderr).toBe(`error: ${path.join(dir, 'none.jsonl')}: cannot read it (no such file)\n`);
  });
});

describe('sd35 batch create', () => {
  it('sends a .jsonl file as NDJSON with its settings in the query, as made by the CLI', async () => {
    const file = path.join(dir, 'requests.jsonl');
    await writeFile(file, '{"prompt":"a"}\n{"prompt":"b"}\n');
    const api = fakeApi({
      'POST /v1/batches': [
        { status: 202, body: { ...view('in_progress', { waiting: 2, total: 2 }), rejected: [] } },
      ],
    });

    const result = await run(
      [
        'batch',
        'create',
        file,
        '--priority',
        'interactive',
        '--webhook-url',
        'https://h.example',
        '--idempotency-key',
        'k-1',
      ],
      api.fetch,
    );

    expect(result.code).toBe(0);
    const [sent] = api.sent;
    expect(sent?.url.searchParams.get('priority')).toBe('interactive');
    expect(sent?.url.searchParams.get('webhook_url')).toBe('https://h.example');
    expect(sent?.headers).toMatchObject({
      'content-type': 'application/x-ndjson',
      'Generation-Source': 'cli',
      'idempotency-key': 'k-1',
    });
    expect(sent?.body).toBe('{"prompt":"a"}\n{"prompt":"b"}\n');
    expect(result.stdout).toContain('batch-20260301120000-0a1b2c3d: in_progress · 2 lines: 2 waiting\n');
  });

  it('exits 2 when a line was rejected, listing it', async () => {
    const file = path.join(dir, 'list.json');
    await writeFile(file, '[{"prompt":"a"},{"prompt":"b","n":9}]');
    const rejected = [
      { line: 2, error: { type: 'invalid_request', message: 'line 2: n: must be at most 4' } },
    ];
    const api = fakeApi({
      'POST /v1/batches': [
        { status: 202, body: { ...view('in_progress', { waiting: 1, rejected: 1, total: 2 }), rejected } },
      ],
    });

    const result = await run(['batch', 'create', file, '--metadata', 'project=demo'], api.fetch);

    expect(result.code).toBe(2);
    expect(JSON.parse(api.sent[0]?.body ?? '')).toEqual({
      requests: [{ prompt: 'a' }, { prompt: 'b', n: 9 }],
      metadata: { project: 'demo' },
    });
    expect(result.stdout).toContain('  line 2 rejected: n: must be at most 4\n');
    expect(result.stderr).toBe('error: batch batch-20260301120000-0a1b2c3d: 1 line rejected\n');
  });

  it('with --wait --json, follows the batch and prints its last view with the rejected lines, and nothing else', async () => {
    const file = path.join(dir, 'wait.jsonl');
    await writeFile(file, '{"prompt":"a"}\n{"prompt":"b"}\n{"prompt":"c"}\n');
    const id = 'batch-20260301120000-0a1b2c3d';
    const api = fakeApi({
      'POST /v1/batches': [{ status: 202, body: { ...view('in_progress', { waiting: 3 }), rejected: [] } }],
      [`GET /v1/batches/${id}`]: [
        { status: 200, body: view('in_progress', { waiting: 2, running: 1 }) },
        { status: 200, body: view('in_progress', { succeeded: 1, running: 1, waiting: 1 }) },
        {
          status: 200,
          body: view('completed', { succeeded: 2, failed: 1 }, { completedAt: '2026-03-01T12:01:00.000Z' }),
        },
      ],
    });

    const result = await run(['batch', 'create', file, '--wait', '--json'], api.fetch);

    // A line failed: exit 1.
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout)).toEqual({
      ...view('completed', { succeeded: 2, failed: 1 }, { completedAt: '2026-03-01T12:01:00.000Z' }),
      rejected: [],
    });
    expect(result.stderr).toBe(`error: batch ${id}: 1 failed of 3 lines\n`);
  });

  it('shows one bar redrawn in place on a terminal, then the batch', async () => {
    const id = 'batch-20260301120000-0a1b2c3d';
    const api = fakeApi({
      [`GET /v1/batches/${id}`]: [
        { status: 200, body: view('in_progress', { waiting: 3 }) },
        { status: 200, body: view('in_progress', { succeeded: 1, waiting: 2 }) },
        {
          status: 200,
          body: view('completed', { succeeded: 3 }, { completedAt: '2026-03-01T12:01:00.000Z' }),
        },
      ],
    });

    const result = await run(['batch', 'get', id, '--wait'], api.fetch, { tty: true });

    expect(result.code).toBe(0);
    // Each read ten seconds after the last (the injected clock).
    expect(result.stderr).toBe(
      [
        '\r\x1b[2Kin_progress [░░░░░░░░░░░░░░░░░░░░░░░░] 0/3   0% · –/min · ETA –',
        '\r\x1b[2Kin_progress [████████░░░░░░░░░░░░░░░░] 1/3  33% · 6.0/min · ETA 20s',
        '\r\x1b[2Kcompleted [████████████████████████] 3/3 100% · 9.0/min',
        '\n',
      ].join(''),
    );
    expect(result.stdout).toBe(
      [
        `${id}: completed · 3 lines: 3 succeeded`,
        '  priority batch · source cli · created 2026-03-01T12:00:00.000Z · completed 2026-03-01T12:01:00.000Z',
        `  results: sd35 batch results ${id}`,
        '',
      ].join('\n'),
    );
  });
});

describe('sd35 batch results', () => {
  const id = 'batch-20260301120000-0a1b2c3d';

  it('writes results.jsonl into <out>/<id>/ and prints its path with the lines’ statuses', async () => {
    const content = '{"line":1,"id":"x-1","status":"succeeded"}\n{"line":2,"status":"rejected"}\n';
    const api = fakeApi({
      [`GET /v1/batches/${id}/results`]: [
        {
          status: 200,
          body: {
            key: `batches/${id}/results.jsonl`,
            url: 'http://s3.example/results',
            expiresAt: 'x',
            expiresInSeconds: 3600,
          },
        },
      ],
      'http://s3.example/results': [{ status: 200, body: content }],
    });
    const out = path.join(dir, 'results');

    const result = await run(['batch', 'results', id, '--out', out], api.fetch);

    const file = path.join(out, id, 'results.jsonl');
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(`${file}  (2 lines: 1 succeeded, 1 rejected)\n`);
    expect(await readFile(file, 'utf8')).toBe(content);
  });

  it('exits 2 while the batch runs, saying how to wait for it', async () => {
    const api = fakeApi({
      [`GET /v1/batches/${id}/results`]: [
        { status: 409, body: { error: { type: 'conflict', message: `Batch ${id} has not ended yet` } } },
      ],
    });

    const result = await run(['batch', 'results', id], api.fetch);

    expect(result.code).toBe(2);
    expect(result.stderr).toBe(
      `error: 409 Batch ${id} has not ended yet (wait for its end: sd35 batch get ${id} --wait)\n`,
    );
  });
});
