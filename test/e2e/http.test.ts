import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GenerationView } from '../../functions/api/schemas.js';
import { renderPng } from '../../local/dashscope-emulator/png.js';
import type { LocalApi } from '../../local/local-api.js';
import { startTestApi, type TestApi } from '../support/local-api.js';
import { waitFor } from '../support/wait-for.js';

/**
 * The HTTP API over real HTTP, as `npm start` serves it: the local server running the whole
 * pipeline (synthesized workflow, emulator, s3rver), with the same requests a user sends with curl.
 */
let dir: string;
let api: LocalApi;
const token = 'test-token-for-http-e2e';
const auth = { authorization: `Bearer ${token}` };

let testApi: TestApi;

beforeAll(async () => {
  testApi = await startTestApi('http-e2e-', { apiToken: token });
  ({ api, dir } = testApi);
  // Synthesizing the stack and starting s3rver take minutes when every core is busy.
}, 300_000);

afterAll(async () => {
  await testApi?.close();
});

async function getJson(url: string): Promise<GenerationView> {
  const response = await fetch(url, { headers: auth });
  expect(response.status).toBe(200);
  return (await response.json()) as GenerationView;
}

async function untilEnded(id: string): Promise<GenerationView> {
  return waitFor(
    async () => {
      const view = await getJson(`${api.url}/v1/generations/${id}`);
      return view.status !== 'queued' && view.status !== 'running' && view;
    },
    { what: `generation ${id} to end`, timeoutMs: 120_000, intervalMs: 20 },
  );
}

describe('the local HTTP API', () => {
  it('creates, follows and serves a generation whose downloaded bytes equal what is in S3', async () => {
    const body = {
      prompt: 'Eagle flying freely in the blue sky and white clouds',
      n: 2,
      size: '512*768',
      seed: 5,
    };

    const created = await fetch(`${api.url}/v1/generations`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    expect(created.status).toBe(202);
    const { id, links } = (await created.json()) as { id: string; links: { self: string } };
    const view = await untilEnded(id);

    expect(links.self).toBe(`/v1/generations/${id}`);
    expect(view.source).toBe('api');
    expect(view.status).toBe('succeeded');
    expect(view.progress).toEqual({ done: 2, failed: 0, total: 2 });
    expect(view.images).toHaveLength(2);
    for (const image of view.images ?? []) {
      const downloaded = Buffer.from(await (await fetch(image.url)).arrayBuffer());
      const object = await api.s3.client.send(
        new GetObjectCommand({ Bucket: api.s3.bucket, Key: image.key }),
      );
      const stored = Buffer.from(await object.Body!.transformToByteArray());
      expect(downloaded.equals(stored)).toBe(true);
      expect(downloaded.equals(await renderPng(body.prompt, image.seed, 512, 768))).toBe(true);
      expect(image).toMatchObject({ bytes: stored.length, contentType: 'image/png', seed: 5 + image.index });
    }
  });

  it('answers 50 concurrent requests with one Idempotency-Key: one 202, then 49 replays of it (200)', async () => {
    const body = JSON.stringify({ prompt: 'One lighthouse, asked for fifty times at once', size: '512*512' });
    const headers = { ...auth, 'content-type': 'application/json', 'idempotency-key': `burst-${Date.now()}` };

    const responses = await Promise.all(
      Array.from({ length: 50 }, () => fetch(`${api.url}/v1/generations`, { method: 'POST', headers, body })),
    );
    const answers = await Promise.all(
      responses.map(async (response) => ({
        status: response.status,
        replayed: response.headers.get('idempotent-replayed'),
        body: (await response.json()) as { id: string; createdAt: string },
      })),
    );

    const started = answers.filter((answer) => answer.status === 202);
    expect(started).toHaveLength(1);
    expect(started[0]?.replayed).toBeNull();
    const replays = answers.filter((answer) => answer.status !== 202);
    expect(replays.map((answer) => `${answer.status} ${answer.replayed}`)).toEqual(
      Array(49).fill('200 true'),
    );
    expect(new Set(answers.map((answer) => answer.body.id))).toEqual(new Set([started[0]?.body.id]));
    expect(new Set(answers.map((answer) => answer.body.createdAt))).toEqual(
      new Set([started[0]?.body.createdAt]),
    );
    const id = started[0]?.body.id ?? '';
    expect((await untilEnded(id)).status).toBe('succeeded');
    const page = (await (await fetch(`${api.url}/v1/generations?limit=50`, { headers: auth })).json()) as {
      data: GenerationView[];
    };
    expect(page.data.filter((view) => view.request?.prompt.startsWith('One lighthouse'))).toHaveLength(1);
  }, 180_000);

  it('refuses a request without the bearer token, but not the health check', async () => {
    expect((await fetch(`${api.url}/v1/generations`)).status).toBe(401);
    expect((await fetch(`${api.url}/healthz`)).status).toBe(200);
  });

  it('runs the sd35 CLI end to end: create, progress, download', async () => {
    const out = path.join(dir, 'cli-out');

    const { stdout, stderr } = await promisify(execFile)(
      process.execPath,
      [
        'bin/sd35.js',
        'generate',
        'a lighthouse at dusk',
        '--n',
        '1',
        '--size',
        '512*512',
        '--api',
        api.url,
        '--out',
        out,
      ],
      { cwd: path.join(import.meta.dirname, '..', '..'), env: { ...process.env, API_TOKEN: token } },
    );

    const file = stdout.trim().split('  (')[0] ?? '';
    expect(file.startsWith(out)).toBe(true);
    const bytes = await readFile(file);
    expect(bytes.subarray(1, 4).toString()).toBe('PNG');
    const id = /generation (\S+) created at/.exec(stderr)?.[1] ?? '';
    expect((await getJson(`${api.url}/v1/generations/${id}`)).source).toBe('cli');
  }, 60_000);
});
