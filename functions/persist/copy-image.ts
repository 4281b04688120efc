import { createHash } from 'node:crypto';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { DeleteObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { type CancelTimer, type Clock, systemClock, type Timers } from '../shared/clock.js';
import { DOWNLOAD_BUDGET } from '../shared/download-budget.js';
import {
  isRetryableStatus,
  StorageUnavailableError,
  type UpstreamErrorType,
  upstreamErrorType,
} from '../shared/errors.js';

/** Image content types we store, and the key extension of each. */
export const IMAGE_TYPES: Readonly<Record<string, string>> = {
  'image/png': 'png',
  'image/jpeg': 'jpg',
  'image/webp': 'webp',
};

/**
 * The first bytes every file of each stored type starts with (PNG's `\x89PNG`, JPEG's SOI marker,
 * WebP's RIFF container), `undefined` for bytes that may vary. A body that does not start with its
 * declared type's signature is not that image, whatever its content type says.
 */
const SIGNATURES: Readonly<Record<string, readonly (number | undefined)[]>> = {
  'image/png': [0x89, 0x50, 0x4e, 0x47],
  'image/jpeg': [0xff, 0xd8, 0xff],
  'image/webp': [0x52, 0x49, 0x46, 0x46, undefined, undefined, undefined, undefined, 0x57, 0x45, 0x42, 0x50],
};

/** Multipart part size when the length is unknown: memory per upload stays near this. */
const PART_SIZE = 8 * 1024 * 1024;

/** The most of an error answer's body read to find its code: enough for OSS's XML, never a whole image. */
const ERROR_BODY_BYTES = 4096;

/** The stable types an image that could not be copied is listed with. */
export type ImageFailureType = UpstreamErrorType | 'result_rejected' | 'timeout';

/**
 * Why one image could not be copied. `retryable` failures are worth another download. A stalled
 * download (see {@link CopyLimits}) is `timeout` and retryable, with a message that says so.
 */
export class ImageCopyError extends Error {
  override readonly name = 'ImageCopyError';
  constructor(
    readonly type: ImageFailureType,
    message: string,
    readonly retryable: boolean,
    readonly httpStatus?: number,
    /** The result host's own error code, e.g. OSS's `AccessDenied`. */
    readonly upstreamCode?: string,
  ) {
    super(message);
  }
}

export interface CopyTarget {
  readonly s3: S3Client;
  readonly bucket: string;
  /** Key without extension; the extension comes from the response's content type. */
  readonly keyStem: string;
  readonly metadata: Record<string, string>;
}

/**
 * What one download may take. A download is stalled, and abandoned, when it has not ended
 * `timeoutMs` after it started (headers and whole body), or when fewer than
 * `minBytesPerSecond × stallWindowMs / 1000` bytes arrived in any `stallWindowMs` (a host that
 * trickles bytes, or never answers): so a trickle is caught in about two windows, long before the
 * deadline.
 */
export interface CopyLimits {
  readonly maxBytes: number;
  /** Deadline of the whole download, headers and body, in ms. */
  readonly timeoutMs: number;
  /** Throughput below which a download counts as stalled, in bytes per second. @default DOWNLOAD_BUDGET.minBytesPerSecond */
  readonly minBytesPerSecond?: number;
  /** The window the throughput is measured over, in ms. @default DOWNLOAD_BUDGET.stallWindowMs */
  readonly stallWindowMs?: number;
  readonly fetch: typeof fetch;
  /** The time the deadline and the stall windows run on (a test moves its own). @default systemClock */
  readonly clock?: Clock & Timers;
  /**
   * Keep the image's bytes in memory as they pass, up to this many (the thumbnail is made of them,
   * with no second read from S3): a larger image is still copied, without `content`. @default 0
   */
  readonly keepBytes?: number;
}

export interface CopiedImage {
  readonly key: string;
  readonly bytes: number;
  readonly sha256: string;
  readonly contentType: string;
}

/** A copied image, and its bytes when they were kept (see {@link CopyLimits.keepBytes}). */
export type CopyOutcome = CopiedImage & { readonly content?: Buffer };

/**
 * Counts and hashes the bytes flowing through, fails the stream past the size cap, and holds back
 * the first few bytes until they show the declared type's signature (so nothing that is not an
 * image reaches S3).
 */
class Meter extends Transform {
  readonly hash = createHash('sha256');
  bytes = 0;
  overCap = false;
  #head: Buffer[] = [];
  #headBytes = 0;
  #signatureChecked = false;
  #kept: Buffer[] | undefined;

  constructor(
    private readonly maxBytes: number,
    private readonly contentType: string,
    private readonly watchdog: DownloadWatchdog,
    private readonly keepBytes = 0,
  ) {
    super();
    this.#kept = keepBytes > 0 ? [] : undefined;
  }

  /** The whole body, when it was kept (it fits in `keepBytes`). */
  get content(): Buffer | undefined {
    return this.#kept && Buffer.concat(this.#kept, this.bytes);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    this.watchdog.received(chunk.length);
    if (this.bytes > this.maxBytes) {
      this.overCap = true;
      callback(
        new ImageCopyError('result_rejected', `image is larger than the ${this.maxBytes}-byte cap`, false),
      );
      return;
    }
    this.hash.update(chunk);
    // Past the allowance the kept bytes are dropped at once: memory stays within keepBytes.
    if (this.#kept && this.bytes > this.keepBytes) this.#kept = undefined;
    this.#kept?.push(chunk);
    if (this.#signatureChecked) {
      callback(null, chunk);
      return;
    }
    this.#head.push(chunk);
    this.#headBytes += chunk.length;
    const signature = SIGNATURES[this.contentType] ?? [];
    if (this.#headBytes < signature.length) {
      callback();
      return;
    }
    const head = Buffer.concat(this.#head);
    this.#head = [];
    this.#signatureChecked = true;
    if (!this.#matches(head, signature)) {
      callback(this.#notAnImage());
      return;
    }
    callback(null, head);
  }

  override _flush(callback: TransformCallback): void {
    this.watchdog.downloaded();
    // The body ended before a whole signature arrived: too short to be an image.
    callback(this.#signatureChecked ? null : this.#notAnImage());
  }

  #matches(head: Buffer, signature: readonly (number | undefined)[]): boolean {
    return signature.every((byte, index) => byte === undefined || head[index] === byte);
  }

  #notAnImage(): ImageCopyError {
    return new ImageCopyError(
      'result_rejected',
      `result is not an image: its first bytes are not those of ${this.contentType}`,
      false,
    );
  }
}

/**
 * Watches one download: aborts it, with a retryable `timeout` {@link ImageCopyError} that names
 * the stall, past its deadline or when its throughput falls under the minimum (see
 * {@link CopyLimits}). `onStall` runs before the abort, so whoever records the first failure
 * records the stall, not the abort it causes.
 */
class DownloadWatchdog {
  readonly #controller = new AbortController();
  readonly #clock: Clock & Timers;
  readonly #cancelDeadline: CancelTimer;
  #cancelThroughputCheck: CancelTimer = () => {};
  #bytes = 0;
  #bytesAtLastCheck = 0;

  constructor(limits: CopyLimits, onStall: (error: ImageCopyError) => void) {
    this.#clock = limits.clock ?? systemClock;
    const stall = (why: string) => {
      this.stop();
      const error = new ImageCopyError('timeout', `download stalled: ${why}`, true);
      onStall(error);
      this.#controller.abort(error);
    };
    const minBytesPerSecond = limits.minBytesPerSecond ?? DOWNLOAD_BUDGET.minBytesPerSecond;
    const windowMs = limits.stallWindowMs ?? DOWNLOAD_BUDGET.stallWindowMs;
    const minimum = Math.ceil((minBytesPerSecond * windowMs) / 1000);
    this.#cancelDeadline = this.#clock.setTimeout(
      () => stall(`not finished ${limits.timeoutMs} ms after it started (${this.#bytes} bytes received)`),
      limits.timeoutMs,
    );
    // One window after another, each set when the last one ends (an interval on the clock's timers).
    const checkThroughput = () => {
      const got = this.#bytes - this.#bytesAtLastCheck;
      this.#bytesAtLastCheck = this.#bytes;
      if (got < minimum) {
        stall(`${got} bytes in ${windowMs} ms, under the minimum of ${minBytesPerSecond} bytes/s`);
        return;
      }
      this.#cancelThroughputCheck = this.#clock.setTimeout(checkThroughput, windowMs);
    };
    this.#cancelThroughputCheck = this.#clock.setTimeout(checkThroughput, windowMs);
  }

  /** Aborts the download (fetch and body) when it stalls. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  received(bytes: number): void {
    this.#bytes += bytes;
  }

  /**
   * The whole body arrived: no more throughput to measure while S3 finishes the upload (the
   * deadline still bounds the copy).
   */
  downloaded(): void {
    this.#cancelThroughputCheck();
  }

  stop(): void {
    this.#cancelDeadline();
    this.#cancelThroughputCheck();
  }
}

/**
 * Streams one result image from its URL into S3: the bytes pass once through a hashing,
 * size-capping meter and are never held whole in memory, unless `limits.keepBytes` asks to keep
 * them (bounded by it). With a Content-Length, one streamed
 * PutObject; without, a multipart upload in {@link PART_SIZE} parts. S3 makes an object visible
 * only when its upload completes, so a failed copy leaves nothing half-written; a copy refused
 * after S3 took it is deleted.
 *
 * Throws {@link ImageCopyError} for a problem with the image or its download (a stall included),
 * and {@link StorageUnavailableError} when S3 fails.
 */
export async function copyImage(url: URL, target: CopyTarget, limits: CopyLimits): Promise<CopyOutcome> {
  // The first stream failure (stall, download or cap) is recorded synchronously, before S3 sees the
  // body fail, so a failed copy is blamed on the right side. It also aborts the upload at once
  // instead of leaving S3 waiting for the rest.
  let streamFailure: unknown;
  const uploadAbort = new AbortController();
  const recordFailure = (error: unknown) => {
    streamFailure ??= error;
    uploadAbort.abort(error);
  };
  const watchdog = new DownloadWatchdog(limits, recordFailure);
  try {
    return await copyWatched(url, target, limits, {
      watchdog,
      uploadAbort,
      recordFailure,
      failure: () => streamFailure,
    });
  } finally {
    watchdog.stop();
  }
}

interface CopyState {
  readonly watchdog: DownloadWatchdog;
  readonly uploadAbort: AbortController;
  readonly recordFailure: (error: unknown) => void;
  readonly failure: () => unknown;
}

async function copyWatched(
  url: URL,
  target: CopyTarget,
  limits: CopyLimits,
  state: CopyState,
): Promise<CopyOutcome> {
  const { watchdog, uploadAbort, recordFailure } = state;
  let response: Response;
  try {
    response = await limits.fetch(url, { redirect: 'error', signal: watchdog.signal });
  } catch (error) {
    throw downloadError(state.failure() ?? error);
  }
  if (!response.ok || !response.body) {
    throw statusError(response.status, await errorOf(response));
  }

  const contentType = (response.headers.get('content-type') ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  const extension = IMAGE_TYPES[contentType];
  if (!extension) {
    await response.body.cancel();
    throw new ImageCopyError(
      'result_rejected',
      `result is not an image we store (content type "${contentType}")`,
      false,
    );
  }
  const lengthHeader = response.headers.get('content-length');
  const contentLength = lengthHeader === null ? undefined : Number(lengthHeader);
  if (contentLength !== undefined && contentLength > limits.maxBytes) {
    await response.body.cancel();
    throw new ImageCopyError(
      'result_rejected',
      `image of ${contentLength} bytes is over the ${limits.maxBytes}-byte cap`,
      false,
    );
  }

  const key = `${target.keyStem}.${extension}`;
  const meter = new Meter(limits.maxBytes, contentType, watchdog, limits.keepBytes);
  const source = Readable.fromWeb(response.body as WebReadableStream<Uint8Array>);
  source.on('error', recordFailure);
  meter.on('error', recordFailure);
  const flowing = pipeline(source, meter).catch(recordFailure);
  const params = {
    Bucket: target.bucket,
    Key: key,
    Body: meter,
    ContentType: contentType,
    Metadata: target.metadata,
  };
  try {
    if (contentLength !== undefined && Number.isFinite(contentLength)) {
      await target.s3.send(new PutObjectCommand({ ...params, ContentLength: contentLength }), {
        abortSignal: uploadAbort.signal,
      });
    } else {
      const upload = new Upload({ client: target.s3, params, partSize: PART_SIZE, queueSize: 2 });
      uploadAbort.signal.addEventListener('abort', () => void upload.abort(), { once: true });
      await upload.done();
    }
  } catch (error) {
    const failure = state.failure();
    if (failure === undefined) {
      source.destroy();
      await flowing;
      throw new StorageUnavailableError(`S3 write of ${key} failed: ${(error as Error).message}`, {
        cause: error,
      });
    }
    // A failed upload stores nothing on S3 (a multipart one is aborted by lib-storage).
    throw downloadError(failure);
  }
  await flowing;
  const failure = state.failure();
  if (failure !== undefined) {
    await remove(target, key);
    throw downloadError(failure);
  }
  if (contentLength !== undefined && meter.bytes !== contentLength) {
    await remove(target, key);
    throw new ImageCopyError(
      'upstream_error',
      `download truncated: ${meter.bytes} of ${contentLength} bytes`,
      true,
    );
  }
  const content = meter.content;
  return {
    key,
    bytes: meter.bytes,
    sha256: meter.hash.digest('hex'),
    contentType,
    ...(content ? { content } : {}),
  };
}

/**
 * Deletes an object S3 took although its copy failed afterwards: it must never sit where a whole
 * image is expected. A failed delete is a storage failure (the workflow retries Persist, whose
 * retry replaces the object).
 */
async function remove(target: CopyTarget, key: string): Promise<void> {
  try {
    await target.s3.send(new DeleteObjectCommand({ Bucket: target.bucket, Key: key }));
  } catch (error) {
    throw new StorageUnavailableError(`S3 delete of refused ${key} failed: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/** A refused download, typed as every other upstream failure (see `upstreamErrorType`). */
function statusError(status: number, refusal: { code?: string; message?: string }): ImageCopyError {
  const { code, message } = refusal;
  const type = upstreamErrorType({ code, message, httpStatus: status, from: 'result-host' });
  const answered = `result URL answered HTTP ${status}${code ? ` ${code}` : ''}${message ? `: ${message}` : ''}`;
  return new ImageCopyError(type, answered, isRetryableStatus(status), status, code);
}

/**
 * The error code and message of a refused download: OSS answers
 * `<Error><Code>AccessDenied</Code><Message>…</Message>…` (XML), other hosts may answer
 * DashScope-style JSON. Reads at most {@link ERROR_BODY_BYTES}, then drops the rest; never throws
 * (the status alone still classifies the failure).
 */
async function errorOf(response: Response): Promise<{ code?: string; message?: string }> {
  if (!response.body) return {};
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let length = 0;
  try {
    while (length < ERROR_BODY_BYTES) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      length += value.length;
    }
  } catch {
    return {};
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  const text = Buffer.concat(chunks).toString('utf8', 0, Math.min(length, ERROR_BODY_BYTES));
  const code =
    /<Code>([^<]{1,100})<\/Code>/.exec(text)?.[1] ?? /"code"\s*:\s*"([^"]{1,100})"/.exec(text)?.[1];
  const message =
    /<Message>([^<]{1,200})<\/Message>/.exec(text)?.[1] ?? /"message"\s*:\s*"([^"]{1,200})"/.exec(text)?.[1];
  return {
    ...(code && /^[\w.-]+$/.test(code) ? { code } : {}),
    // Only printable text: the message is logged and stored in the manifest.
    ...(message && /^[\x20-\x7e]+$/.test(message) ? { message } : {}),
  };
}

function downloadError(error: unknown): ImageCopyError {
  if (error instanceof ImageCopyError) return error;
  const err = error as Error & { cause?: { code?: string } };
  if (err.name === 'TimeoutError' || err.name === 'AbortError') {
    return new ImageCopyError('timeout', 'download stalled: aborted before it finished', true);
  }
  const reason = err.cause?.code ?? err.message ?? String(error);
  if (/redirect/i.test(err.message ?? '') || /redirect/i.test(String(err.cause))) {
    return new ImageCopyError('result_rejected', 'result URL redirected; redirects are not followed', false);
  }
  return new ImageCopyError('upstream_error', `download failed: ${reason}`, true);
}
