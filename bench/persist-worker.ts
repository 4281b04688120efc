/**
 * One measured copy for `bench:persist`, in its own process so that its RSS is its own: the
 * parent runs the image server and s3rver. Prints one JSON line: bytes, seconds, RSS before and at
 * its peak, and the CPU time it used while copying.
 *
 *   node --import tsx --expose-gc bench/persist-worker.ts <mode> <s3-endpoint> <bucket> <url>...
 *
 * mode: `persist` (the real copyImage: meter, sha256, streamed PutObject), `put` (the same
 * streamed PutObject without our meter, to isolate its cost) or `file` (a plain stream to a file).
 */
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { copyImage } from '../functions/persist/copy-image.js';
import { localS3Client } from '../local/s3.js';

const MODES = ['persist', 'put', 'file'] as const;
type Mode = (typeof MODES)[number];

/** RSS is sampled this often while copying. */
const SAMPLE_MS = 5;

async function main(): Promise<void> {
  const [mode, endpoint, bucket, ...urls] = process.argv.slice(2);
  if (!MODES.includes(mode as Mode) || !endpoint || !bucket || urls.length === 0) {
    throw new Error('usage: persist-worker.ts persist|put|file <s3-endpoint> <bucket> <url>...');
  }
  const s3 = localS3Client(endpoint);
  const dir = await mkdtemp(path.join(tmpdir(), 'bench-persist-'));
  try {
    const copy = copier(mode as Mode, s3, bucket, dir);
    // Warm up: load every module and open the connections the measured copies will use.
    const first = urls[0] as string;
    await copy(new URL(first.replace(/\/\d+\/\d+$/, '/1048576/99')), 'warm-up');
    (globalThis as { gc?: () => void }).gc?.();

    const before = process.memoryUsage.rss();
    let peak = before;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage.rss());
    }, SAMPLE_MS);
    const started = performance.now();
    const cpuBefore = process.cpuUsage();
    let bytes = 0;
    // One after another, as persistGeneration copies a task's images.
    for (const [index, url] of urls.entries()) bytes += await copy(new URL(url), `image-${index}`);
    const seconds = (performance.now() - started) / 1000;
    const cpu = process.cpuUsage(cpuBefore);
    clearInterval(sampler);
    peak = Math.max(peak, process.memoryUsage.rss());
    process.stdout.write(
      `${JSON.stringify({ bytes, seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6, rssBefore: before, rssPeak: peak })}\n`,
    );
  } finally {
    s3.destroy();
    await rm(dir, { recursive: true, force: true });
  }
}

/** Copies one URL the way `mode` says; returns the bytes copied. */
function copier(mode: Mode, s3: S3Client, bucket: string, dir: string) {
  return async (url: URL, name: string): Promise<number> => {
    if (mode === 'persist') {
      const copied = await copyImage(
        url,
        { s3, bucket, keyStem: `bench/persist/${name}`, metadata: { bench: 'persist' } },
        { maxBytes: 512 * 1024 * 1024, timeoutMs: 600_000, fetch },
      );
      return copied.bytes;
    }
    const response = await fetch(url);
    if (!response.ok || !response.body) throw new Error(`GET ${url} answered ${response.status}`);
    const length = Number(response.headers.get('content-length'));
    const body = Readable.fromWeb(response.body as WebReadableStream<Uint8Array>);
    if (mode === 'put') {
      await s3.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: `bench/put/${name}.png`,
          Body: body,
          ContentLength: length,
          ContentType: 'image/png',
        }),
      );
    } else {
      await pipeline(body, createWriteStream(path.join(dir, `${name}.png`)));
    }
    return length;
  };
}

await main();
