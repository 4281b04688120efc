import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import type { Clock } from '../shared/clock.js';
import { type DashScopeClient, parseDashScopeTime, toSubmitBody } from '../shared/dashscope/client.js';
import type { TaskResponse } from '../shared/dashscope/schemas.js';
import { DOWNLOAD_BUDGET } from '../shared/download-budget.js';
import {
  DashScopeUnavailableError,
  DownloadStalledError,
  errorOfType,
  type GenerationError,
  isUpstreamErrorType,
  NoImagesPersistedError,
  StorageUnavailableError,
  TaskExpiredError,
  upstreamErrorType,
} from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import type { PersistResult, StoredThumbnail, TaskInput } from '../shared/workflow-state.js';
import { type CopiedImage, type CopyOutcome, copyImage, IMAGE_TYPES, ImageCopyError } from './copy-image.js';
import {
  type FailedImage,
  generationPrefix,
  type Manifest,
  manifestKey,
  manifestSchema,
  type StoredImage,
} from './manifest.js';
import { checkResultUrl, type ResultUrlPolicy } from './result-url.js';
import { type MakeThumbnail, THUMBNAIL, thumbnailKey } from './thumbnail.js';

export interface PersistDeps {
  readonly dashscope: DashScopeClient;
  readonly s3: S3Client;
  readonly bucket: string;
  readonly fetch: typeof fetch;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly resultUrls: ResultUrlPolicy;
  readonly maxImageBytes: number;
  /** Deadline of one download, whole body included. */
  readonly downloadTimeoutMs: number;
  /** A download slower than this over the stall window is stalled. @default DOWNLOAD_BUDGET.minBytesPerSecond */
  readonly downloadMinBytesPerSecond?: number;
  /** @default DOWNLOAD_BUDGET.stallWindowMs */
  readonly downloadStallWindowMs?: number;
  /** Tries per image for transient download failures. @default DOWNLOAD_BUDGET.attempts */
  readonly downloadAttempts?: number;
  /**
   * Makes each image's thumbnail from the bytes that were just copied (see `thumbnail.ts`).
   * @default none: images are stored without thumbnails
   */
  readonly makeThumbnail?: MakeThumbnail;
}

/**
 * Copies every image of a succeeded task into S3 and writes the manifest last.
 *
 * What DashScope answers is held against what we asked for: the task must still be SUCCEEDED;
 * each of the request's `n` images is stored or listed under `failed` with a stable type (a
 * result DashScope left out is `upstream_error`, a URL repeated for a second image
 * `result_rejected`); results past `n` are not stored; counts that disagree (`task_metrics`,
 * `usage`, the last poll) are recorded in the manifest's `discrepancies`.
 *
 * Idempotent: if the manifest exists, it is returned as is; images already stored by an earlier,
 * interrupted run (same key, same task id in their metadata) are reused, not downloaded again,
 * so a retry works even after DashScope's URLs expired. Result URLs are fetched fresh from
 * DashScope here rather than carried in the workflow state.
 *
 * Thumbnails (with `deps.makeThumbnail`): each stored image gets one under
 * `generations/{id}/thumbnails/{index}.webp`, made from the bytes as they were copied (a reused
 * image's from the bytes re-read to hash it; a stored thumbnail of the same task is reused), and
 * written before the manifest. A thumbnail that cannot be made never fails the image: the image is
 * kept without one, and the manifest's `warnings` say why.
 *
 * Throws {@link StorageUnavailableError} (retryable) when S3 fails, {@link TaskExpiredError} when
 * DashScope forgot the task, {@link DashScopeUnavailableError} (retryable) when it no longer calls
 * the task SUCCEEDED, and, when not a single image was stored, the error of the images' common
 * cause (see {@link nothingStoredError}).
 */
export async function persistGeneration(input: TaskInput, deps: PersistDeps): Promise<PersistResult> {
  const key = manifestKey(input.id);
  const existing = await readManifest(deps, key);
  if (existing) {
    deps.logger.info('Manifest already present: nothing to do', { generationId: input.id, manifestKey: key });
    return summarize(existing, key);
  }

  const response = await deps.dashscope.getTask(input.task.taskId);
  const out = response.output;
  if (out.task_status === 'UNKNOWN') {
    throw new TaskExpiredError(`DashScope no longer knows task ${input.task.taskId}: its results are gone`, {
      requestId: response.request_id,
    });
  }
  if (out.task_status !== 'SUCCEEDED') {
    throw new DashScopeUnavailableError(
      `DashScope reports task ${input.task.taskId} ${out.task_status} after it reported SUCCEEDED`,
      { requestId: response.request_id },
    );
  }
  const { slots, discrepancies } = reconcile(input, response);
  const warnings: string[] = [];
  const already = await storedImages(deps, input, warnings);
  const images: StoredImage[] = [];
  const failed: FailedImage[] = [];

  for (const [index, slot] of slots.entries()) {
    const seed = input.task.seed + index;
    if ('error' in slot) {
      failed.push({ index, seed, error: slot.error });
      continue;
    }
    const reused = already.get(index);
    if (reused) {
      images.push({ index, seed, ...reused });
      continue;
    }
    const checked = checkResultUrl(slot.url, deps.resultUrls);
    if ('reason' in checked) {
      failed.push({ index, seed, error: { type: 'result_rejected', message: checked.reason } });
      continue;
    }
    let outcome: CopyOutcome;
    try {
      outcome = await copyWithRetries(checked.url, input, index, seed, deps);
    } catch (error) {
      if (!(error instanceof ImageCopyError)) throw error;
      const code = error.upstreamCode === undefined ? {} : { code: error.upstreamCode };
      failed.push({ index, seed, error: { type: error.type, ...code, message: error.message } });
      continue;
    }
    const { content, ...copied } = outcome;
    const thumbnail = await storeThumbnail(input, index, content, deps, warnings);
    images.push({ index, seed, ...copied, ...(thumbnail ? { thumbnail } : {}) });
  }

  const log = { generationId: input.id, taskId: input.task.taskId };
  for (const failure of failed) deps.logger.warn('Image not stored', { ...log, ...failure });
  if (discrepancies.length > 0) deps.logger.warn('DashScope answer disagrees', { ...log, discrepancies });
  if (images.length === 0) throw nothingStoredError(input.task.taskId, failed);

  const body = toSubmitBody(input.request, input.task.seed);
  const manifest: Manifest = {
    version: 1,
    id: input.id,
    status: failed.length === 0 ? 'complete' : 'partial',
    request: input.request,
    parameters: { model: body.model, ...body.parameters },
    images,
    failed,
    ...(discrepancies.length > 0 ? { discrepancies } : {}),
    ...(warnings.length > 0 ? { warnings } : {}),
    dashscope: {
      ...(input.task.account ? { account: input.task.account } : {}),
      taskId: input.task.taskId,
      submitRequestId: input.task.submitRequestId,
      queryRequestId: response.request_id,
    },
    times: {
      submittedAt: input.task.submittedAt,
      dashscopeSubmit: parseDashScopeTime(out.submit_time) ?? input.task.times.submit,
      dashscopeScheduled: parseDashScopeTime(out.scheduled_time) ?? input.task.times.scheduled,
      dashscopeEnd: parseDashScopeTime(out.end_time) ?? input.task.times.end,
      persistedAt: new Date(deps.clock.now()).toISOString(),
    },
    usage: { imageCount: response.usage?.image_count ?? images.length },
  };
  await s3Call(`write ${key}`, () =>
    deps.s3.send(
      new PutObjectCommand({
        Bucket: deps.bucket,
        Key: key,
        Body: `${JSON.stringify(manifest, null, 2)}\n`,
        ContentType: 'application/json',
      }),
    ),
  );
  deps.logger.info('Generation persisted', {
    ...log,
    stored: images.length,
    failed: failed.length,
    bytes: images.reduce((sum, image) => sum + image.bytes, 0),
  });
  return summarize(manifest, key);
}

/** What Persist does with image i: download a URL, or list the image as failed. */
type Slot = { readonly url: string } | { readonly error: FailedImage['error'] };

/**
 * One slot per requested image, from DashScope's `results`, and every way the answer disagrees
 * with the request, its own counts or the last poll.
 */
function reconcile(input: TaskInput, response: TaskResponse): { slots: Slot[]; discrepancies: string[] } {
  const n = input.request.n;
  const results = response.output.results ?? [];
  const discrepancies: string[] = [];
  const slots: Slot[] = [];
  const firstIndexOfUrl = new Map<string, number>();
  for (let index = 0; index < n; index++) {
    const result = results[index];
    if (result === undefined) {
      slots.push({
        error: {
          type: 'upstream_error',
          message: `DashScope returned ${results.length} result(s) for n = ${n}, none for image ${index}`,
        },
      });
    } else if ('code' in result) {
      const type = upstreamErrorType({ code: result.code, message: result.message });
      slots.push({ error: { type, code: result.code, message: result.message || result.code } });
    } else if (firstIndexOfUrl.has(result.url)) {
      slots.push({
        error: {
          type: 'result_rejected',
          message: `result ${index} repeats the URL of result ${firstIndexOfUrl.get(result.url)}`,
        },
      });
    } else {
      firstIndexOfUrl.set(result.url, index);
      slots.push({ url: result.url });
    }
  }
  if (results.length > n) {
    discrepancies.push(
      `DashScope returned ${results.length} results for n = ${n}: those past ${n} are not stored`,
    );
  }
  const urls = results.slice(0, n).filter((result) => 'url' in result).length;
  const metrics = response.output.task_metrics;
  if (metrics && (metrics.TOTAL !== n || metrics.SUCCEEDED !== urls)) {
    discrepancies.push(
      `task_metrics say ${metrics.SUCCEEDED} of ${metrics.TOTAL} succeeded; results hold ${urls} URL(s) for n = ${n}`,
    );
  }
  const imageCount = response.usage?.image_count;
  if (imageCount !== undefined && imageCount !== urls) {
    discrepancies.push(`usage.image_count is ${imageCount}; results hold ${urls} URL(s)`);
  }
  const polled = input.task.progress;
  if (polled && polled.total !== n) {
    discrepancies.push(`the last poll counted ${polled.total} image(s) for n = ${n}`);
  }
  return { slots, discrepancies };
}

/**
 * The error when not one image was stored: the error of the images' common cause when they share
 * one (every URL expired: {@link TaskExpiredError}; every download stalled:
 * {@link DownloadStalledError}; every image refused by moderation: a content-policy error),
 * else {@link NoImagesPersistedError}. None is retried: each image had its own tries.
 */
export function nothingStoredError(taskId: string, failed: readonly FailedImage[]): GenerationError {
  const reasons =
    failed.map((f) => `image ${f.index}: ${f.error.message}`).join('; ') || 'no image requested';
  const message = `No image of task ${taskId} could be stored (${reasons})`;
  const types = new Set(failed.map((f) => f.error.type));
  const codes = new Set(failed.map((f) => f.error.code));
  const [type] = types;
  const [code] = codes;
  const details = { upstreamCode: codes.size === 1 ? code : undefined, retryable: false };
  if (types.size !== 1 || type === undefined || type === 'result_rejected') {
    return new NoImagesPersistedError(message, details);
  }
  if (type === 'timeout') return new DownloadStalledError(message, details);
  return isUpstreamErrorType(type)
    ? errorOfType(type, message, details)
    : new NoImagesPersistedError(message, details);
}

function summarize(manifest: Manifest, key: string): PersistResult {
  return {
    manifestKey: key,
    status: manifest.status,
    images: manifest.images,
    failed: manifest.failed.map(({ index, error }) => ({ index, type: error.type, message: error.message })),
  };
}

async function copyWithRetries(
  url: URL,
  input: TaskInput,
  index: number,
  seed: number,
  deps: PersistDeps,
): Promise<CopyOutcome> {
  const attempts = deps.downloadAttempts ?? DOWNLOAD_BUDGET.attempts;
  for (let attempt = 1; ; attempt++) {
    try {
      return await copyImage(
        url,
        {
          s3: deps.s3,
          bucket: deps.bucket,
          keyStem: `${generationPrefix(input.id)}${index}`,
          metadata: {
            'generation-id': input.id,
            'task-id': input.task.taskId,
            seed: String(seed),
            model: input.request.model,
          },
        },
        {
          maxBytes: deps.maxImageBytes,
          timeoutMs: deps.downloadTimeoutMs,
          minBytesPerSecond: deps.downloadMinBytesPerSecond,
          stallWindowMs: deps.downloadStallWindowMs,
          fetch: deps.fetch,
          keepBytes: deps.makeThumbnail ? THUMBNAIL.maxInputBytes : 0,
        },
      );
    } catch (error) {
      if (!(error instanceof ImageCopyError && error.retryable && attempt < attempts)) throw error;
      deps.logger.info('Image download failed, retrying', {
        generationId: input.id,
        index,
        attempt,
        reason: error.message,
      });
      await sleep(DOWNLOAD_BUDGET.backoffMs * 2 ** (attempt - 1));
    }
  }
}

/** An image an interrupted earlier run stored, with its thumbnail when it has one. */
type FoundImage = CopiedImage & { readonly thumbnail?: StoredThumbnail };

/**
 * Images an interrupted earlier run already stored for this task, keyed by index, with their
 * size and hash re-read from S3 (the manifest needs them). Each keeps the thumbnail that run
 * stored; one without gets its thumbnail now, from the bytes read for the hash.
 */
async function storedImages(
  deps: PersistDeps,
  input: TaskInput,
  warnings: string[],
): Promise<Map<number, FoundImage>> {
  const prefix = generationPrefix(input.id);
  const listed = await s3Call(`list ${prefix}`, () =>
    deps.s3.send(new ListObjectsV2Command({ Bucket: deps.bucket, Prefix: prefix })),
  );
  const found = new Map<number, FoundImage>();
  const extensions = Object.values(IMAGE_TYPES).join('|');
  const pattern = new RegExp(`^${prefix}(\\d+)\\.(${extensions})$`);
  const keys = new Set((listed.Contents ?? []).map((object) => object.Key));
  for (const key of keys) {
    const match = key ? pattern.exec(key) : null;
    if (!match || !key) continue;
    const index = Number(match[1]);
    const head = await s3Call(`head ${key}`, () =>
      deps.s3.send(new HeadObjectCommand({ Bucket: deps.bucket, Key: key })),
    );
    if (head.Metadata?.['task-id'] !== input.task.taskId) continue;
    const stored = keys.has(thumbnailKey(input.id, index))
      ? await storedThumbnail(deps, input, index)
      : undefined;
    const keep = deps.makeThumbnail && !stored ? THUMBNAIL.maxInputBytes : 0;
    const { content, ...hashed } = await s3Call(`read ${key}`, async () => {
      const object = await deps.s3.send(new GetObjectCommand({ Bucket: deps.bucket, Key: key }));
      return hashStream(object.Body as Readable, keep);
    });
    const thumbnail = stored ?? (await storeThumbnail(input, index, content, deps, warnings));
    found.set(index, {
      key,
      contentType: head.ContentType ?? 'application/octet-stream',
      ...hashed,
      ...(thumbnail ? { thumbnail } : {}),
    });
  }
  return found;
}

/** A thumbnail an earlier run of this task stored, read from its metadata; undefined if it is not one. */
async function storedThumbnail(
  deps: PersistDeps,
  input: TaskInput,
  index: number,
): Promise<StoredThumbnail | undefined> {
  const key = thumbnailKey(input.id, index);
  const head = await s3Call(`head ${key}`, () =>
    deps.s3.send(new HeadObjectCommand({ Bucket: deps.bucket, Key: key })),
  );
  const width = Number(head.Metadata?.width);
  const height = Number(head.Metadata?.height);
  const ok = head.Metadata?.['task-id'] === input.task.taskId && width > 0 && height > 0;
  return ok && head.ContentLength !== undefined
    ? {
        key,
        bytes: head.ContentLength,
        contentType: head.ContentType ?? THUMBNAIL.contentType,
        width,
        height,
      }
    : undefined;
}

/**
 * Makes image `index`'s thumbnail from its bytes and stores it. Returns undefined, and adds a
 * warning, when it cannot be made (bytes not kept because the image is over
 * {@link THUMBNAIL.maxInputBytes}, or the image library failed): the image is kept either way.
 * Throws {@link StorageUnavailableError} when S3 refuses the write (the workflow retries Persist,
 * which reuses the image and makes the thumbnail again).
 */
async function storeThumbnail(
  input: TaskInput,
  index: number,
  content: Buffer | undefined,
  deps: PersistDeps,
  warnings: string[],
): Promise<StoredThumbnail | undefined> {
  if (!deps.makeThumbnail) return undefined;
  const skip = (why: string) => {
    warnings.push(`image ${index} has no thumbnail: ${why}`);
    deps.logger.warn('Thumbnail not made', { generationId: input.id, index, reason: why });
    return undefined;
  };
  if (!content) return skip(`the image is over the ${THUMBNAIL.maxInputBytes}-byte thumbnail input limit`);
  let made: Awaited<ReturnType<MakeThumbnail>>;
  try {
    made = await deps.makeThumbnail(content);
  } catch (error) {
    // Whatever went wrong, the full image is stored: never fail or lose it for its thumbnail.
    return skip((error as Error).message);
  }
  const key = thumbnailKey(input.id, index);
  await s3Call(`write ${key}`, () =>
    deps.s3.send(
      new PutObjectCommand({
        Bucket: deps.bucket,
        Key: key,
        Body: made.bytes,
        ContentType: made.contentType,
        Metadata: {
          'generation-id': input.id,
          'task-id': input.task.taskId,
          width: String(made.width),
          height: String(made.height),
        },
      }),
    ),
  );
  return {
    key,
    bytes: made.bytes.length,
    contentType: made.contentType,
    width: made.width,
    height: made.height,
  };
}

/** Hashes a stream; keeps its bytes too while they fit in `keepBytes`. */
async function hashStream(
  stream: Readable,
  keepBytes: number,
): Promise<{ bytes: number; sha256: string; content?: Buffer }> {
  const hash = createHash('sha256');
  let bytes = 0;
  let kept: Buffer[] | undefined = keepBytes > 0 ? [] : undefined;
  for await (const chunk of stream) {
    bytes += (chunk as Buffer).length;
    hash.update(chunk as Buffer);
    if (kept && bytes > keepBytes) kept = undefined;
    kept?.push(chunk as Buffer);
  }
  return { bytes, sha256: hash.digest('hex'), ...(kept ? { content: Buffer.concat(kept, bytes) } : {}) };
}

async function readManifest(deps: PersistDeps, key: string): Promise<Manifest | undefined> {
  try {
    const object = await deps.s3.send(new GetObjectCommand({ Bucket: deps.bucket, Key: key }));
    const text = await object.Body?.transformToString();
    return manifestSchema.parse(JSON.parse(text ?? ''));
  } catch (error) {
    if ((error as Error).name === 'NoSuchKey') return undefined;
    throw new StorageUnavailableError(`S3 read of ${key} failed: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

async function s3Call<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw new StorageUnavailableError(`S3 ${what} failed: ${(error as Error).message}`, { cause: error });
  }
}
