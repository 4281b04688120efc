import { createHash } from 'node:crypto';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  DeleteObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { StorageUnavailableError } from '../shared/errors.js';

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

/** Why one image could not be copied. `retryable` failures are worth another download. */
export class ImageCopyError extends Error {
  override readonly name = 'ImageCopyError';
  constructor(
    readonly type: 'expired' | 'result_rejected' | 'upstream_error' | 'timeout',
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

export interface CopyLimits {
  readonly maxBytes: number;
  readonly timeoutMs: number;
  readonly fetch: typeof fetch;
}

export interface CopiedImage {
  readonly key: string;
  readonly bytes: number;
  readonly sha256: string;
  readonly contentType: string;
}

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

  constructor(
    private readonly maxBytes: number,
    private readonly contentType: string,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.maxBytes) {
      this.overCap = true;
      callback(
        new ImageCopyError('result_rejected', `image is larger than the ${this.maxBytes}-byte cap`, false),
      );
      return;
    }
    this.hash.update(chunk);
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
 * Streams one result image from its URL into S3: the bytes pass once through a hashing,
 * size-capping meter and are never held whole in memory. With a Content-Length, one streamed
 * PutObject; without, a multipart upload in {@link PART_SIZE} parts. S3 makes an object visible
 * only when its upload completes, so a failed copy leaves nothing half-written.
 *
 * Throws {@link ImageCopyError} for a problem with the image or its download, and
 * {@link StorageUnavailableError} when S3 fails.
 */
export async function copyImage(url: URL, target: CopyTarget, limits: CopyLimits): Promise<CopiedImage> {
  const signal = AbortSignal.timeout(limits.timeoutMs);
  let response: Response;
  try {
    response = await limits.fetch(url, { redirect: 'error', signal });
  } catch (error) {
    throw downloadError(error);
  }
  if (!response.ok || !response.body) {
    throw statusError(response.status, await errorCodeOf(response));
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
  const meter = new Meter(limits.maxBytes, contentType);
  const source = Readable.fromWeb(response.body as WebReadableStream<Uint8Array>);
  // The first stream error (download or cap) is recorded synchronously, before S3 sees the body fail,
  // so a failed copy is blamed on the right side.
  // A broken download also aborts the upload at once instead of leaving S3 waiting for the rest.
  let streamFailure: unknown;
  const uploadAbort = new AbortController();
  const recordFailure = (error: unknown) => {
    streamFailure ??= error;
    uploadAbort.abort(error);
  };
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
        abortSignal: AbortSignal.any([signal, uploadAbort.signal]),
      });
    } else {
      const upload = new Upload({ client: target.s3, params, partSize: PART_SIZE, queueSize: 2 });
      uploadAbort.signal.addEventListener('abort', () => void upload.abort(), { once: true });
      await upload.done();
    }
  } catch (error) {
    if (streamFailure === undefined) {
      source.destroy();
      await flowing;
      throw new StorageUnavailableError(`S3 write of ${key} failed: ${(error as Error).message}`, {
        cause: error,
      });
    }
    await discard(target, key);
    throw downloadError(streamFailure);
  }
  await flowing;
  if (streamFailure !== undefined) {
    await discard(target, key);
    throw downloadError(streamFailure);
  }
  if (contentLength !== undefined && meter.bytes !== contentLength) {
    throw new ImageCopyError(
      'upstream_error',
      `download truncated: ${meter.bytes} of ${contentLength} bytes`,
      true,
    );
  }
  return { key, bytes: meter.bytes, sha256: meter.hash.digest('hex'), contentType };
}

/**
 * Removes whatever a failed streamed upload may have left at `key`. S3 itself never completes an
 * upload whose body broke off, but not every S3-compatible store is that strict: s3rver writes the
 * body straight to the object's file and may create it just after our delete. So the delete is
 * repeated until a listing shows the key gone (a few tries, on the failure path only), because a
 * truncated object must never sit where a whole image is expected.
 */
async function discard(target: CopyTarget, key: string): Promise<void> {
  for (let attempt = 0; attempt < 5; attempt++) {
    await target.s3.send(new DeleteObjectCommand({ Bucket: target.bucket, Key: key })).catch(() => undefined);
    await sleep(25 * 2 ** attempt);
    const listed = await target.s3
      .send(new ListObjectsV2Command({ Bucket: target.bucket, Prefix: key, MaxKeys: 1 }))
      .catch(() => undefined);
    if (listed && !(listed.Contents ?? []).some((object) => object.Key === key)) return;
  }
}

function statusError(status: number, code: string | undefined): ImageCopyError {
  const answered = `result URL answered HTTP ${status}${code ? ` ${code}` : ''}`;
  if (status === 403 || status === 404 || status === 410) {
    return new ImageCopyError('expired', `${answered} (expired or revoked)`, false, status, code);
  }
  if (status >= 500 || status === 408 || status === 429) {
    return new ImageCopyError('upstream_error', answered, true, status, code);
  }
  return new ImageCopyError('result_rejected', answered, false, status, code);
}

/**
 * The error code of a refused download: OSS answers `<Error><Code>AccessDenied</Code>…` (XML),
 * other hosts may answer DashScope-style JSON. Reads at most {@link ERROR_BODY_BYTES}, then drops
 * the rest; never throws (the status alone still classifies the failure).
 */
async function errorCodeOf(response: Response): Promise<string | undefined> {
  if (!response.body) return undefined;
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
    return undefined;
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  const text = Buffer.concat(chunks).toString('utf8', 0, Math.min(length, ERROR_BODY_BYTES));
  const code =
    /<Code>([^<]{1,100})<\/Code>/.exec(text)?.[1] ?? /"code"\s*:\s*"([^"]{1,100})"/.exec(text)?.[1];
  return code && /^[\w.-]+$/.test(code) ? code : undefined;
}

function downloadError(error: unknown): ImageCopyError {
  if (error instanceof ImageCopyError) return error;
  const err = error as Error & { cause?: { code?: string } };
  if (err.name === 'TimeoutError' || err.name === 'AbortError') {
    return new ImageCopyError('timeout', 'download did not finish in time', true);
  }
  const reason = err.cause?.code ?? err.message ?? String(error);
  if (/redirect/i.test(err.message ?? '') || /redirect/i.test(String(err.cause))) {
    return new ImageCopyError('result_rejected', 'result URL redirected; redirects are not followed', false);
  }
  return new ImageCopyError('upstream_error', `download failed: ${reason}`, true);
}
