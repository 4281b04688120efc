import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CopyTarget, copyImage, ImageCopyError } from '../../functions/persist/copy-image.js';
import { type LocalS3, startLocalS3 } from '../../local/s3.js';
import { closeServer, listenOnLoopback } from '../support/loopback.js';
import { ManualClock } from '../support/manual-clock.js';
import { waitFor } from '../support/wait-for.js';

/** copyImage against s3rver and a local result host: what it refuses to store, and what it records. */
let s3: LocalS3;
let dir: string;
let server: Server;
let origin: string;
/** A host that trickles 20 bytes every 100 ms of `clock`, with or without the length announced. */
interface Trickle {
  readonly length: 'declared' | 'chunked';
  readonly clock: ManualClock;
}
const answers = new Map<string, { status: number; type: string; body: Buffer; trickle?: Trickle }>();
/** The paths the host has begun to answer. */
const answering = new Set<string>();

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'copy-image-test-'));
  s3 = await startLocalS3({ directory: dir });
  server = createServer((req, res) => {
    const answer = answers.get(req.url ?? '');
    if (!answer) return void res.writeHead(404).end();
    answering.add(req.url ?? '');
    const { trickle } = answer;
    if (trickle) {
      const length = trickle.length === 'declared' ? { 'content-length': answer.body.length } : {};
      res.writeHead(answer.status, { 'content-type': answer.type, ...length });
      res.flushHeaders();
      let sent = 0;
      let closed = false;
      res.on('close', () => {
        closed = true;
      });
      const next = () => {
        if (closed) return;
        res.write(answer.body.subarray(sent, sent + 20));
        sent += 20;
        trickle.clock.setTimeout(next, 100);
      };
      trickle.clock.setTimeout(next, 100);
      return;
    }
    res.writeHead(answer.status, { 'content-type': answer.type, 'content-length': answer.body.length });
    res.end(answer.body);
  });
  origin = await listenOnLoopback(server);
});

afterAll(async () => {
  await closeServer(server);
  await s3.close();
  await rm(dir, { recursive: true, force: true });
});

let counter = 0;
function serve(
  status: number,
  type: string,
  body: Buffer | string,
  trickle?: Trickle,
): { url: URL; target: CopyTarget; answered: () => boolean } {
  counter += 1;
  const file = `/file-${counter}`;
  answers.set(file, { status, type, body: Buffer.from(body), trickle });
  return {
    url: new URL(`${origin}${file}`),
    target: { s3: s3.client, bucket: s3.bucket, keyStem: `copy-image/${counter}`, metadata: {} },
    answered: () => answering.has(file),
  };
}

/** Moves `clock` forward by `ms`, one 100 ms step at a time (the trickling host writes at each). */
function play(clock: ManualClock, ms: number): void {
  for (let moved = 0; moved < ms; moved += 100) clock.advance(Math.min(100, ms - moved));
}

/** The deadline runs on a clock nobody moves: only the stall cases, on clocks of their own, reach it. */
const limits = { maxBytes: 1_000_000, timeoutMs: 5000, fetch: globalThis.fetch, clock: new ManualClock() };
const rejectionOf = (promise: Promise<unknown>) =>
  promise.then(
    () => undefined,
    (error: unknown) => error,
  );

async function storedKeys(stem: string): Promise<string[]> {
  const listed = await s3.client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: stem }));
  return (listed.Contents ?? []).map((object) => object.Key ?? '');
}

describe('copyImage: what is an image', () => {
  it.each([
    ['image/png', Buffer.from('<!DOCTYPE html><html><body>Sign in</body></html>')],
    ['image/jpeg', Buffer.from([0x89, 0x50, 0x4e, 0x47, 1, 2, 3, 4])],
    ['image/webp', Buffer.from('RIFF\0\0\0\0WAVEfmt ')],
    ['image/png', Buffer.from([0x89, 0x50])],
  ])(
    'refuses a %s answer that does not start with that type’s signature, storing nothing',
    async (type, body) => {
      // Prepare
      const { url, target } = serve(200, type, body);

      // Act
      const error = await rejectionOf(copyImage(url, target, limits));

      // Assess
      expect(error).toBeInstanceOf(ImageCopyError);
      expect(error).toMatchObject({ type: 'result_rejected', retryable: false });
      expect((error as Error).message).toContain('not an image');
      expect(await storedKeys(target.keyStem)).toEqual([]);
    },
  );

  it.each([
    [
      'image/png',
      Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(64)]),
    ],
    ['image/jpeg', Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(64)])],
    ['image/webp', Buffer.concat([Buffer.from('RIFF\x40\0\0\0WEBPVP8 '), Buffer.alloc(64)])],
  ])('stores a %s answer that starts with its signature, byte for byte', async (type, body) => {
    // Prepare
    const { url, target } = serve(200, type, body);

    // Act
    const copied = await copyImage(url, target, limits);

    // Assess
    expect(copied.bytes).toBe(body.length);
    expect(await storedKeys(target.keyStem)).toEqual([copied.key]);
  });
});

describe('copyImage: keeping the bytes for a thumbnail', () => {
  const png = Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    Buffer.alloc(5000, 7),
  ]);

  it('returns the whole body beside the copy when it fits in keepBytes', async () => {
    // Prepare
    const { url, target } = serve(200, 'image/png', png);

    // Act
    const copied = await copyImage(url, target, { ...limits, keepBytes: png.length });

    // Assess
    expect(copied.content?.equals(png)).toBe(true);
  });

  it('still copies an image over keepBytes, without its body', async () => {
    // Prepare
    const { url, target } = serve(200, 'image/png', png);

    // Act
    const copied = await copyImage(url, target, { ...limits, keepBytes: png.length - 1 });

    // Assess
    expect(copied.content).toBeUndefined();
    expect(copied.bytes).toBe(png.length);
    expect(await storedKeys(target.keyStem)).toEqual([copied.key]);
  });
});

describe("copyImage: the result host's error code", () => {
  it("records OSS's code from a 403's XML body", async () => {
    // Prepare
    const xml =
      '<?xml version="1.0" encoding="UTF-8"?>\n<Error>\n  <Code>AccessDenied</Code>\n  <Message>Request has expired.</Message>\n</Error>\n';
    const { url, target } = serve(403, 'application/xml', xml);

    // Act
    const error = await rejectionOf(copyImage(url, target, limits));

    // Assess
    expect(error).toMatchObject({ type: 'expired', httpStatus: 403, upstreamCode: 'AccessDenied' });
    expect((error as Error).message).toBe('result URL answered HTTP 403 AccessDenied: Request has expired.');
  });

  it('records a JSON error code, and keeps a retryable status retryable', async () => {
    // Prepare
    const { url, target } = serve(503, 'application/json', '{"code":"ServiceUnavailable","message":"busy"}');

    // Act
    const error = await rejectionOf(copyImage(url, target, limits));

    // Assess
    expect(error).toMatchObject({
      type: 'upstream_error',
      retryable: true,
      upstreamCode: 'ServiceUnavailable',
    });
  });

  it('leaves the code out when the body carries none', async () => {
    // Prepare
    const { url, target } = serve(404, 'text/plain', 'not here');

    // Act
    const error = await rejectionOf(copyImage(url, target, limits));

    // Assess
    expect(error).toMatchObject({ type: 'expired', httpStatus: 404, upstreamCode: undefined });
    expect((error as Error).message).toBe('result URL answered HTTP 404');
  });
});

describe('copyImage: a download that stalls', () => {
  // Each case runs the download's watchdog, and the trickling host, on a clock of its own that
  // only the case moves: its windows and deadline are exact, however busy the machine is.
  const png = Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    Buffer.alloc(100_000),
  ]);

  it.each(['declared', 'chunked'] as const)(
    'abandons a trickle (length %s) under the minimum throughput, as a retryable stall, storing nothing',
    async (length) => {
      // Prepare
      const clock = new ManualClock();
      const { url, target, answered } = serve(200, 'image/png', png, { length, clock });
      const copying = rejectionOf(
        copyImage(url, target, {
          ...limits,
          clock,
          timeoutMs: 60_000,
          stallWindowMs: 500,
          minBytesPerSecond: 1024,
        }),
      );
      await waitFor(answered, { what: 'the result host to start answering', timeoutMs: 60_000 });

      // Act: one stall window, in which the host sends 100 bytes (the minimum is 512).
      play(clock, 500);
      const error = await copying;

      // Assess
      expect(error).toBeInstanceOf(ImageCopyError);
      expect(error).toMatchObject({ type: 'timeout', retryable: true });
      expect((error as Error).message).toMatch(/^download stalled: \d+ bytes in 500 ms, under the minimum/);
      expect(await storedKeys(target.keyStem)).toEqual([]);
    },
  );

  it('abandons a download still running at its deadline, however steady', async () => {
    // Prepare
    const clock = new ManualClock();
    const { url, target, answered } = serve(200, 'image/png', png, { length: 'declared', clock });
    const copying = rejectionOf(
      copyImage(url, target, {
        ...limits,
        clock,
        timeoutMs: 700,
        stallWindowMs: 60_000,
        minBytesPerSecond: 1,
      }),
    );
    await waitFor(answered, { what: 'the result host to start answering', timeoutMs: 60_000 });

    // Act: the host keeps sending, 20 bytes every 100 ms, up to the deadline.
    play(clock, 700);
    const error = await copying;

    // Assess
    expect(error).toMatchObject({ type: 'timeout', retryable: true });
    expect((error as Error).message).toMatch(/^download stalled: not finished 700 ms after it started/);
    expect(await storedKeys(target.keyStem)).toEqual([]);
  });

  it('does not take an S3 upload that is slow to finish, after the whole body arrived, for a stall', async () => {
    // Prepare: S3 answers the put 1.5 s after it took the whole body, three stall windows.
    const clock = new ManualClock();
    const { url, target } = serve(200, 'image/png', png);
    const send = target.s3.send.bind(target.s3) as (command: object) => Promise<unknown>;
    const slowS3 = new Proxy(target.s3, {
      get: (client, property) =>
        property === 'send'
          ? async (command: object) => {
              const answer = await send(command);
              play(clock, 1500);
              return answer;
            }
          : Reflect.get(client, property, client),
    });

    // Act
    const copied = await copyImage(
      url,
      { ...target, s3: slowS3 },
      { ...limits, clock, timeoutMs: 60_000, stallWindowMs: 500, minBytesPerSecond: 1024 },
    );

    // Assess
    expect(copied.bytes).toBe(png.length);
    expect(await storedKeys(target.keyStem)).toEqual([copied.key]);
  });

  it('leaves no timer of its own behind once the copy ended', async () => {
    // Prepare
    const clock = new ManualClock();
    const { url, target } = serve(200, 'image/png', png);

    // Act
    await copyImage(url, target, { ...limits, clock, stallWindowMs: 500 });

    // Assess
    expect(clock.pending).toBe(0);
  });
});
