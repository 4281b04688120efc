import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { manifestSchema } from '../../functions/persist/manifest.js';
import { type PersistDeps, persistGeneration } from '../../functions/persist/persist.js';
import { type MakeThumbnail, ThumbnailError } from '../../functions/persist/thumbnail.js';
import type { DashScopeClient } from '../../functions/shared/dashscope/client.js';
import type { TaskResponse } from '../../functions/shared/dashscope/schemas.js';
import {
  ContentPolicyError,
  DashScopeUnavailableError,
  NoImagesPersistedError,
} from '../../functions/shared/errors.js';
import { generationRequestSchema } from '../../functions/shared/generation-request.js';
import { silentLogger } from '../../functions/shared/logger.js';
import type { TaskInput } from '../../functions/shared/workflow-state.js';
import { type LocalS3, startLocalS3 } from '../../local/s3.js';
import { closeServer, listenOnLoopback } from '../support/loopback.js';

/** Real S3 (s3rver) and a real HTTP server standing in for DashScope's result host. */
let s3: LocalS3;
let dir: string;
let server: Server;
let origin: string;
const files = new Map<
  string,
  { body: Buffer; type: string; chunked?: boolean; truncate?: boolean; status?: number; trickle?: boolean }
>();
/** Requests per file path, for counting tries. */
const requests = new Map<string, number>();

const imageBytes = (seed: number, size = 200_000) => {
  const body = Buffer.alloc(size);
  for (let i = 0; i < size; i++) body[i] = (i * 31 + seed * 7) % 251;
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47]), body]);
};
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'persist-test-'));
  s3 = await startLocalS3({ directory: dir });
  server = createServer((req, res) => {
    const filePath = req.url?.split('?')[0] ?? '';
    requests.set(filePath, (requests.get(filePath) ?? 0) + 1);
    const file = files.get(filePath);
    if (!file) return void res.writeHead(404).end();
    if (file.trickle) {
      // The whole image announced, then 10 bytes every 100 ms: a host that trickles.
      res.writeHead(200, { 'content-type': file.type, 'content-length': String(file.body.length) });
      let sent = 0;
      const timer = setInterval(() => {
        res.write(file.body.subarray(sent, sent + 10));
        sent += 10;
      }, 100);
      res.on('close', () => clearInterval(timer));
      return;
    }
    if (file.status) return void res.writeHead(file.status).end('denied');
    if (file.truncate) {
      res.writeHead(200, { 'content-type': file.type, 'content-length': String(file.body.length) });
      res.write(file.body.subarray(0, 1000));
      setTimeout(() => res.destroy(), 10);
      return;
    }
    res.writeHead(200, {
      'content-type': file.type,
      ...(file.chunked ? {} : { 'content-length': String(file.body.length) }),
    });
    res.end(file.body);
  });
  origin = await listenOnLoopback(server);
});

afterAll(async () => {
  await closeServer(server);
  await s3.close();
  await rm(dir, { recursive: true, force: true });
});

beforeEach(() => {
  files.clear();
  requests.clear();
});

let counter = 0;
function input(n: number): TaskInput {
  counter += 1;
  return {
    id: `persist-${counter}`,
    request: generationRequestSchema.parse({ prompt: 'a lighthouse', n, seed: 100 }),
    task: {
      taskId: `task-${counter}`,
      seed: 100,
      submitRequestId: 'req-submit',
      submittedAt: '2026-01-01T00:00:00.000Z',
      deadline: '2026-01-01T01:00:00.000Z',
      status: 'succeeded',
      dashscopeStatus: 'SUCCEEDED',
      times: {},
      pollCount: 3,
      nextPollSeconds: 1,
      deadlineExceeded: false,
    },
  };
}

function fakeDashScope(
  results: TaskResponse['output']['results'],
  status: TaskResponse['output']['task_status'] = 'SUCCEEDED',
  extra: Partial<TaskResponse['output']> = {},
) {
  const calls: string[] = [];
  const client: DashScopeClient = {
    submit: async () => {
      throw new Error('not used');
    },
    cancel: async () => {},
    listTasks: async () => ({ request_id: 'r', data: [], total: 0 }),
    getTask: async (taskId) => {
      calls.push(taskId);
      return {
        request_id: 'req-query',
        output: {
          task_id: taskId,
          task_status: status,
          results,
          submit_time: '2026-01-01 08:00:01.000',
          ...extra,
        },
        usage: { image_count: results?.filter((r) => 'url' in r).length ?? 0 },
      };
    },
  };
  return { client, calls };
}

function deps(dashscope: DashScopeClient, overrides: Partial<PersistDeps> = {}): PersistDeps {
  return {
    dashscope,
    s3: s3.client,
    bucket: s3.bucket,
    fetch: globalThis.fetch,
    clock: { now: () => Date.parse('2026-01-01T00:05:00.000Z') },
    logger: silentLogger,
    resultUrls: { hosts: ['127.0.0.1'], allowHttp: true },
    maxImageBytes: 10 * 1024 * 1024,
    downloadTimeoutMs: 5000,
    downloadAttempts: 2,
    ...overrides,
  };
}

async function read(client: S3Client, key: string): Promise<Buffer> {
  const object = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }));
  return Buffer.from(await object.Body!.transformToByteArray());
}

async function keys(prefix: string): Promise<string[]> {
  const listed = await s3.client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: prefix }));
  return (listed.Contents ?? []).map((o) => o.Key ?? '').sort();
}

function serve(
  name: string,
  body: Buffer,
  extra: Partial<{
    type: string;
    chunked: boolean;
    truncate: boolean;
    status: number;
    trickle: boolean;
  }> = {},
) {
  files.set(`/${name}`, { body, type: 'image/png', ...extra });
  return `${origin}/${name}?Expires=1&Signature=x`;
}

describe('persistGeneration', () => {
  it('stores every image byte for byte under deterministic keys, with content type and metadata', async () => {
    const job = input(2);
    const images = [imageBytes(1), imageBytes(2)];
    const { client } = fakeDashScope([
      { url: serve('a.png', images[0]!) },
      { url: serve('b.png', images[1]!) },
    ]);

    const result = await persistGeneration(job, deps(client));

    expect(result.status).toBe('complete');
    for (const [index, bytes] of images.entries()) {
      const key = `generations/${job.id}/${index}.png`;
      // By digest: a deep equality of two images' bytes costs a second.
      expect(sha256(await read(s3.client, key))).toBe(sha256(bytes));
      const head = await s3.client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: key }));
      expect(head.ContentType).toBe('image/png');
      expect(head.Metadata).toMatchObject({
        'task-id': job.task.taskId,
        seed: String(100 + index),
        model: 'stable-diffusion-3.5-large',
      });
      expect(result.images[index]).toMatchObject({ key, bytes: bytes.length, sha256: sha256(bytes) });
    }
  });

  it('writes the manifest last, listing each image, the request, ids and usage', async () => {
    const job = input(2);
    const { client } = fakeDashScope([
      { url: serve('a.png', imageBytes(3)) },
      { url: serve('b.png', imageBytes(4)) },
    ]);
    const order: string[] = [];
    const recording = new Proxy(s3.client, {
      get(target, prop, receiver) {
        if (prop !== 'send') return Reflect.get(target, prop, receiver);
        return (command: { constructor: { name: string }; input: { Key?: string } }, ...rest: unknown[]) => {
          if (command.constructor.name === 'PutObjectCommand') order.push(command.input.Key ?? '');
          return (target.send as (...args: unknown[]) => unknown)(command, ...rest);
        };
      },
    });

    await persistGeneration(job, deps(client, { s3: recording }));

    expect(order.at(-1)).toBe(`generations/${job.id}/manifest.json`);
    expect(order).toHaveLength(3);
    const manifest = manifestSchema.parse(JSON.parse((await read(s3.client, order.at(-1)!)).toString()));
    expect(manifest).toMatchObject({
      id: job.id,
      status: 'complete',
      request: { prompt: 'a lighthouse', n: 2 },
      parameters: { model: 'stable-diffusion-3.5-large', seed: 100, n: 2, size: '1024*1024' },
      dashscope: { taskId: job.task.taskId, submitRequestId: 'req-submit', queryRequestId: 'req-query' },
      usage: { imageCount: 2 },
      times: { dashscopeSubmit: '2026-01-01T00:00:01.000Z', persistedAt: '2026-01-01T00:05:00.000Z' },
    });
    expect(manifest.images.map((i) => i.seed)).toEqual([100, 101]);
  });

  it('records a partial failure from DashScope instead of hiding it', async () => {
    const job = input(2);
    const { client } = fakeDashScope([
      { url: serve('a.png', imageBytes(5)) },
      { code: 'InternalError.Timeout', message: 'An internal timeout error has occured during execution.' },
    ]);

    const result = await persistGeneration(job, deps(client));

    expect(result.status).toBe('partial');
    expect(result.failed).toEqual([
      { index: 1, type: 'upstream_error', message: expect.stringContaining('timeout') },
    ]);
    expect(await keys(`generations/${job.id}/`)).toEqual([
      `generations/${job.id}/0.png`,
      `generations/${job.id}/manifest.json`,
    ]);
  });

  it('refuses a result host that is not on the allow-list', async () => {
    const job = input(2);
    const { client } = fakeDashScope([
      { url: serve('a.png', imageBytes(6)) },
      { url: 'https://attacker.example.com/x.png' },
    ]);

    const result = await persistGeneration(job, deps(client));

    expect(result.failed[0]).toMatchObject({
      index: 1,
      type: 'result_rejected',
      message: expect.stringContaining('allow-list'),
    });
  });

  it('refuses plain http unless the policy allows it', async () => {
    const job = input(1);
    const { client } = fakeDashScope([{ url: serve('a.png', imageBytes(7)) }]);

    await expect(
      persistGeneration(job, deps(client, { resultUrls: { hosts: ['127.0.0.1'] } })),
    ).rejects.toThrow(/https only/);
  });

  it('stops a download over the size cap and stores nothing for it', async () => {
    const job = input(2);
    const { client } = fakeDashScope([
      { url: serve('small.png', imageBytes(8, 1000)) },
      { url: serve('big.png', imageBytes(9, 300_000), { chunked: true }) },
    ]);

    const result = await persistGeneration(job, deps(client, { maxImageBytes: 100_000 }));

    expect(result.failed).toEqual([
      { index: 1, type: 'result_rejected', message: expect.stringContaining('cap') },
    ]);
    expect(await keys(`generations/${job.id}/1`)).toEqual([]);
  });

  it('refuses a response that is not an image', async () => {
    const job = input(2);
    const { client } = fakeDashScope([
      { url: serve('a.png', imageBytes(10)) },
      { url: serve('page.html', Buffer.from('<html></html>'), { type: 'text/html' }) },
    ]);

    const result = await persistGeneration(job, deps(client));

    expect(result.failed[0]).toMatchObject({
      index: 1,
      type: 'result_rejected',
      message: expect.stringContaining('text/html'),
    });
  });

  it('records an expired URL (403) as expired', async () => {
    const job = input(2);
    const { client } = fakeDashScope([
      { url: serve('a.png', imageBytes(11)) },
      { url: serve('gone.png', imageBytes(12), { status: 403 }) },
    ]);

    const result = await persistGeneration(job, deps(client));

    expect(result.failed[0]).toMatchObject({ index: 1, type: 'expired' });
  });

  it('leaves no object behind when the download breaks mid-body', async () => {
    const job = input(2);
    const { client } = fakeDashScope([
      { url: serve('a.png', imageBytes(13)) },
      { url: serve('cut.png', imageBytes(14), { truncate: true }) },
    ]);

    const result = await persistGeneration(job, deps(client));

    expect(result.failed[0]).toMatchObject({ index: 1, type: 'upstream_error' });
    expect(await keys(`generations/${job.id}/1`)).toEqual([]);
  });

  it('streams a response without Content-Length through a multipart upload, bytes intact', async () => {
    const job = input(1);
    const bytes = imageBytes(15, 9 * 1024 * 1024);
    const { client } = fakeDashScope([{ url: serve('chunked.png', bytes, { chunked: true }) }]);

    const result = await persistGeneration(job, deps(client, { maxImageBytes: 20 * 1024 * 1024 }));

    expect(result.images[0]).toMatchObject({ bytes: bytes.length, sha256: sha256(bytes) });
    expect(sha256(await read(s3.client, `generations/${job.id}/0.png`))).toBe(sha256(bytes));
  });

  it('fails with the common cause of its images, and writes no manifest, when no image could be stored', async () => {
    const job = input(1);
    const { client } = fakeDashScope([
      { code: 'DataInspectionFailed', message: 'Output data may contain inappropriate content.' },
    ]);

    await expect(persistGeneration(job, deps(client))).rejects.toBeInstanceOf(ContentPolicyError);
    expect(await keys(`generations/${job.id}/`)).toEqual([]);
  });

  it('fails with NoImagesPersistedError when the images that could not be stored failed for different causes', async () => {
    const job = input(2);
    const { client } = fakeDashScope([
      { code: 'DataInspectionFailed', message: 'Output data may contain inappropriate content.' },
      { url: serve('html.png', Buffer.from('<!DOCTYPE html>')) },
    ]);

    await expect(persistGeneration(job, deps(client))).rejects.toBeInstanceOf(NoImagesPersistedError);
    expect(await keys(`generations/${job.id}/`)).toEqual([]);
  });

  it('lists an image DashScope left out of its results as failed, and the generation as partial', async () => {
    const job = input(2);
    const { client } = fakeDashScope([{ url: serve('a.png', imageBytes(30)) }]);

    const result = await persistGeneration(job, deps(client));

    expect(result.status).toBe('partial');
    expect(result.images.map((image) => image.index)).toEqual([0]);
    expect(result.failed).toEqual([
      { index: 1, type: 'upstream_error', message: expect.stringContaining('1 result(s) for n = 2') },
    ]);
  });

  it('records task_metrics that disagree with the results in the manifest', async () => {
    const job = input(2);
    const { client } = fakeDashScope([{ url: serve('a.png', imageBytes(31)) }], 'SUCCEEDED', {
      task_metrics: { TOTAL: 2, SUCCEEDED: 2, FAILED: 0 },
    });

    const result = await persistGeneration(job, deps(client));

    const manifest = manifestSchema.parse(JSON.parse((await read(s3.client, result.manifestKey)).toString()));
    expect(manifest.status).toBe('partial');
    expect(manifest.discrepancies).toEqual([
      'task_metrics say 2 of 2 succeeded; results hold 1 URL(s) for n = 2',
    ]);
  });

  it('fails, storing nothing, when a succeeded task returns no results at all', async () => {
    const job = input(2);
    const { client } = fakeDashScope([]);

    const error = await persistGeneration(job, deps(client)).catch((caught: unknown) => caught);

    expect(error).toMatchObject({ name: 'DashScopeRejectedError', type: 'upstream_error' });
    expect(await keys(`generations/${job.id}/`)).toEqual([]);
  });

  it('stores no more than n images when DashScope returns more results', async () => {
    const job = input(1);
    const { client } = fakeDashScope([
      { url: serve('a.png', imageBytes(32)) },
      { url: serve('extra.png', imageBytes(33)) },
    ]);

    const result = await persistGeneration(job, deps(client));

    expect(result).toMatchObject({ status: 'complete', failed: [] });
    expect(await keys(`generations/${job.id}/`)).toEqual([
      `generations/${job.id}/0.png`,
      `generations/${job.id}/manifest.json`,
    ]);
  });

  it('refuses a result that repeats the URL of an earlier one, so no image is stored twice', async () => {
    const job = input(2);
    const url = serve('same.png', imageBytes(34));
    const { client } = fakeDashScope([{ url }, { url }]);

    const result = await persistGeneration(job, deps(client));

    expect(result.failed).toEqual([
      { index: 1, type: 'result_rejected', message: 'result 1 repeats the URL of result 0' },
    ]);
    expect(await keys(`generations/${job.id}/1`)).toEqual([]);
  });

  it('refuses to store anything while DashScope no longer calls the task SUCCEEDED', async () => {
    const job = input(1);
    const { client } = fakeDashScope(undefined, 'RUNNING');

    await expect(persistGeneration(job, deps(client))).rejects.toBeInstanceOf(DashScopeUnavailableError);
    expect(await keys(`generations/${job.id}/`)).toEqual([]);
  });

  it('lists a download that trickles as a stall after its tries, storing nothing of it', async () => {
    const job = input(2);
    const { client } = fakeDashScope([
      { url: serve('a.png', imageBytes(35)) },
      { url: serve('slow.png', imageBytes(36), { trickle: true }) },
    ]);

    const result = await persistGeneration(
      job,
      deps(client, { downloadAttempts: 2, downloadStallWindowMs: 500, downloadMinBytesPerSecond: 1024 }),
    );

    expect(result.status).toBe('partial');
    expect(result.failed).toEqual([
      { index: 1, type: 'timeout', message: expect.stringMatching(/^download stalled: /) },
    ]);
    expect(requests.get('/slow.png')).toBe(2);
    expect(await keys(`generations/${job.id}/1`)).toEqual([]);
  });

  it('fails with DownloadStalledError, storing nothing, when every download stalls', async () => {
    const job = input(1);
    const { client } = fakeDashScope([{ url: serve('slow.png', imageBytes(37), { trickle: true }) }]);

    const error = await persistGeneration(
      job,
      deps(client, { downloadAttempts: 1, downloadTimeoutMs: 800, downloadStallWindowMs: 60_000 }),
    ).catch((caught: unknown) => caught);

    expect(error).toMatchObject({ name: 'DownloadStalledError', type: 'timeout' });
    expect((error as Error).message).toContain('not finished 800 ms after it started');
    expect(await keys(`generations/${job.id}/`)).toEqual([]);
  });

  it('returns the same result without touching DashScope when run again', async () => {
    const job = input(2);
    const { client, calls } = fakeDashScope([
      { url: serve('a.png', imageBytes(16)) },
      { url: serve('b.png', imageBytes(17)) },
    ]);
    const first = await persistGeneration(job, deps(client));
    const before = await keys(`generations/${job.id}/`);

    const second = await persistGeneration(job, deps(client));

    expect(second).toEqual(first);
    expect(calls).toHaveLength(1);
    expect(await keys(`generations/${job.id}/`)).toEqual(before);
  });

  it('reuses images an interrupted run stored, even after their URLs expired', async () => {
    const job = input(2);
    const first = imageBytes(18);
    const second = imageBytes(19);
    // The interrupted run: image 0 stored, then the process died before image 1 and the manifest.
    const interrupted = fakeDashScope([
      { url: serve('a.png', first) },
      { url: `${origin}/missing-before-crash.png` },
    ]);
    await persistGeneration(job, deps(interrupted.client)).catch(() => undefined);
    await s3.client.send(
      new (await import('@aws-sdk/client-s3')).DeleteObjectCommand({
        Bucket: s3.bucket,
        Key: `generations/${job.id}/manifest.json`,
      }),
    );
    files.set('/a.png', { body: first, type: 'image/png', status: 403 });
    const retry = fakeDashScope([
      { url: serve('a-expired.png', first, { status: 403 }) },
      { url: serve('b.png', second) },
    ]);

    const result = await persistGeneration(job, deps(retry.client));

    expect(result.status).toBe('complete');
    expect(result.images.map((i) => i.sha256)).toEqual([sha256(first), sha256(second)]);
  });
});

/**
 * A thumbnailer that records the bytes it was given and answers a small fake WebP (its first
 * byte is the image's, so each thumbnail is told apart).
 */
function fakeThumbnails(fail?: (image: Buffer) => boolean) {
  const inputs: Buffer[] = [];
  const make: MakeThumbnail = async (image) => {
    inputs.push(image);
    if (fail?.(image)) throw new ThumbnailError('thumbnail not made: unsupported image');
    return {
      bytes: Buffer.from(`RIFF0000WEBP-${image[10]}`),
      contentType: 'image/webp',
      width: 256,
      height: 192,
    };
  };
  return { make, inputs };
}

async function deleteManifest(id: string): Promise<void> {
  const { DeleteObjectCommand } = await import('@aws-sdk/client-s3');
  await s3.client.send(
    new DeleteObjectCommand({ Bucket: s3.bucket, Key: `generations/${id}/manifest.json` }),
  );
}

describe('persistGeneration with thumbnails', () => {
  it('makes each thumbnail from the bytes it copied, with no second download, and stores it under thumbnails/', async () => {
    const job = input(2);
    const images = [imageBytes(30), imageBytes(31)];
    const { client } = fakeDashScope([
      { url: serve('a.png', images[0]!) },
      { url: serve('b.png', images[1]!) },
    ]);
    const thumbnails = fakeThumbnails();

    const result = await persistGeneration(job, deps(client, { makeThumbnail: thumbnails.make }));

    expect(thumbnails.inputs.map(sha256)).toEqual(images.map(sha256));
    expect(requests.get('/a.png')).toBe(1);
    const manifest = manifestSchema.parse(
      JSON.parse((await read(s3.client, `generations/${job.id}/manifest.json`)).toString()),
    );
    for (const index of [0, 1]) {
      const key = `generations/${job.id}/thumbnails/${index}.webp`;
      const stored = await read(s3.client, key);
      const thumbnail = { key, bytes: stored.length, contentType: 'image/webp', width: 256, height: 192 };
      expect(stored.toString()).toBe(`RIFF0000WEBP-${images[index]![10]}`);
      expect(result.images[index]?.thumbnail).toEqual(thumbnail);
      expect(manifest.images[index]?.thumbnail).toEqual(thumbnail);
    }
    expect(manifest.warnings).toBeUndefined();
  });

  it('keeps the image, without a thumbnail and with a warning, when its thumbnail cannot be made', async () => {
    const job = input(2);
    const images = [imageBytes(32), imageBytes(33)];
    const { client } = fakeDashScope([
      { url: serve('a.png', images[0]!) },
      { url: serve('b.png', images[1]!) },
    ]);
    const thumbnails = fakeThumbnails((image) => image.equals(images[1]!));

    const result = await persistGeneration(job, deps(client, { makeThumbnail: thumbnails.make }));

    expect(result.status).toBe('complete');
    expect(result.images.map((image) => image.sha256)).toEqual(images.map(sha256));
    expect(result.images[1]?.thumbnail).toBeUndefined();
    expect(await keys(`generations/${job.id}/`)).toEqual([
      `generations/${job.id}/0.png`,
      `generations/${job.id}/1.png`,
      `generations/${job.id}/manifest.json`,
      `generations/${job.id}/thumbnails/0.webp`,
    ]);
    const manifest = manifestSchema.parse(
      JSON.parse((await read(s3.client, `generations/${job.id}/manifest.json`)).toString()),
    );
    expect(manifest.warnings).toEqual(['image 1 has no thumbnail: thumbnail not made: unsupported image']);
  });

  it('reuses the thumbnails an interrupted run stored, making none again', async () => {
    const job = input(1);
    const image = imageBytes(34);
    const { client } = fakeDashScope([{ url: serve('a.png', image) }]);
    const firstRun = await persistGeneration(job, deps(client, { makeThumbnail: fakeThumbnails().make }));
    await deleteManifest(job.id);
    const thumbnails = fakeThumbnails();

    const result = await persistGeneration(job, deps(client, { makeThumbnail: thumbnails.make }));

    expect(thumbnails.inputs).toEqual([]);
    expect(result.images).toEqual(firstRun.images);
  });

  it('makes the missing thumbnail of an image an interrupted run stored from the bytes it re-reads, downloading nothing', async () => {
    const job = input(1);
    const image = imageBytes(35);
    const interrupted = fakeDashScope([{ url: serve('a.png', image) }]);
    await persistGeneration(job, deps(interrupted.client));
    await deleteManifest(job.id);
    const expired = fakeDashScope([{ url: serve('a-expired.png', image, { status: 403 }) }]);
    const thumbnails = fakeThumbnails();

    const result = await persistGeneration(job, deps(expired.client, { makeThumbnail: thumbnails.make }));

    expect(thumbnails.inputs.map(sha256)).toEqual([sha256(image)]);
    expect(requests.get('/a-expired.png')).toBeUndefined();
    expect(result.images[0]?.thumbnail?.key).toBe(`generations/${job.id}/thumbnails/0.webp`);
  });
});
