import { createHash } from 'node:crypto';
import { GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { expect } from 'vitest';
import { type Manifest, manifestSchema } from '../../functions/persist/manifest.js';
import { ERROR_TYPE_BY_NAME, type ErrorType } from '../../functions/shared/errors.js';

/** Every stable error type a client may see; `internal_error` means nobody classified the failure. */
export const STABLE_ERROR_TYPES: ReadonlySet<ErrorType> = new Set<ErrorType>(
  Object.values(ERROR_TYPE_BY_NAME).filter((type) => type !== 'internal_error'),
);

/** One object as stored, read back whole (the suite's images are small). */
export interface StoredObject {
  readonly key: string;
  readonly bytes: Buffer;
  readonly sha256: string;
  readonly contentType: string | undefined;
}

const IMAGE_KEY = /^generations\/[^/]+\/(\d+)\.(png|jpg|webp)$/;
const THUMBNAIL_KEY = /^generations\/[^/]+\/thumbnails\/\d+\.webp$/;

export const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/** Every object under `prefix`, keyed by key, bytes and content type included. */
export async function storedObjects(
  s3: S3Client,
  bucket: string,
  prefix: string,
): Promise<Map<string, StoredObject>> {
  const found = new Map<string, StoredObject>();
  let token: string | undefined;
  do {
    const page = await s3.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
    );
    for (const { Key: key } of page.Contents ?? []) {
      if (!key) continue;
      const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      const bytes = Buffer.from(await object.Body!.transformToByteArray());
      found.set(key, { key, bytes, sha256: sha256(bytes), contentType: object.ContentType });
    }
    token = page.NextContinuationToken;
  } while (token);
  return found;
}

/** The index of an image key (`generations/x/2.png` → 2), or undefined for any other object. */
export function imageIndexOf(key: string): number | undefined {
  const match = IMAGE_KEY.exec(key);
  return match ? Number(match[1]) : undefined;
}

/**
 * Invariant 1, on one generation's objects: its manifest, if any, names only objects that exist
 * with exactly the bytes, size and content type it records, and every image object under the
 * prefix is named by it (nothing half-written or orphaned); so is every thumbnail. Without a
 * manifest, no image and no thumbnail is stored. Returns the parsed manifest.
 */
export function checkManifest(
  objects: ReadonlyMap<string, StoredObject>,
  prefix: string,
): Manifest | undefined {
  const manifestObject = objects.get(`${prefix}manifest.json`);
  const images = [...objects.keys()].filter((key) => imageIndexOf(key) !== undefined).sort();
  const thumbnails = [...objects.keys()].filter((key) => THUMBNAIL_KEY.test(key)).sort();
  if (!manifestObject) {
    expect(images, `images stored under ${prefix} without a manifest`).toEqual([]);
    expect(thumbnails, `thumbnails stored under ${prefix} without a manifest`).toEqual([]);
    return undefined;
  }
  const manifest = manifestSchema.parse(JSON.parse(manifestObject.bytes.toString('utf8')));
  for (const image of manifest.images) {
    const object = objects.get(image.key);
    expect(object, `manifest names ${image.key}, which is missing`).toBeDefined();
    expect(object?.sha256, `bytes of ${image.key} differ from the manifest`).toBe(image.sha256);
    expect(object?.bytes.length, `size of ${image.key}`).toBe(image.bytes);
    expect(object?.contentType, `content type of ${image.key}`).toBe(image.contentType);
  }
  expect(images, `image objects under ${prefix} the manifest does not name`).toEqual(
    manifest.images.map((image) => image.key).sort(),
  );
  for (const { thumbnail } of manifest.images) {
    if (!thumbnail) continue;
    const object = objects.get(thumbnail.key);
    expect(object?.bytes.length, `size of ${thumbnail.key}`).toBe(thumbnail.bytes);
    expect(object?.contentType, `content type of ${thumbnail.key}`).toBe(thumbnail.contentType);
  }
  expect(thumbnails, `thumbnails under ${prefix} the manifest does not name`).toEqual(
    manifest.images.flatMap((image) => (image.thumbnail ? [image.thumbnail.key] : [])).sort(),
  );
  return manifest;
}

/**
 * Invariant 2: no image is stored twice under different keys. `seen` maps each image's sha256 to
 * its key across the whole run; the suite gives every case its own prompt, so equal bytes under
 * another key can only be a duplicate copy.
 */
export function checkNoDuplicates(
  objects: ReadonlyMap<string, StoredObject>,
  seen: Map<string, string>,
): void {
  for (const object of objects.values()) {
    if (imageIndexOf(object.key) === undefined) continue;
    const earlier = seen.get(object.sha256);
    expect(earlier ?? object.key, `the bytes of ${object.key} are also stored as ${earlier}`).toBe(
      object.key,
    );
    seen.set(object.sha256, object.key);
  }
}

/** The failure a client sees: the "Generation Failed" event's error (the API shows the same view). */
export interface FailureSeen {
  readonly name: string;
  readonly type: string;
  readonly message: string;
  readonly upstreamCode?: string;
}

/**
 * Invariant 3, for a failed generation: it announced exactly one failure whose type is stable and
 * which carries the upstream code when there is one.
 */
export function checkFailure(
  failure: FailureSeen | undefined,
  upstreamCode: string | undefined,
): FailureSeen {
  expect(failure, 'a failed generation announces its failure').toBeDefined();
  const seen = failure as FailureSeen;
  expect(STABLE_ERROR_TYPES.has(seen.type as ErrorType), `"${seen.type}" is a stable error type`).toBe(true);
  expect(seen.upstreamCode, `${seen.name} carries the upstream code`).toBe(upstreamCode);
  expect(seen.message.length).toBeGreaterThan(0);
  return seen;
}

/** Invariant 3, for images a succeeded generation could not store: a stable type, and the upstream code. */
export function checkImageFailures(
  manifest: Manifest | undefined,
  expected: ReadonlyArray<{ index: number; type: string; code?: string }>,
): void {
  const failed = manifest?.failed ?? [];
  for (const failure of failed) {
    expect(STABLE_ERROR_TYPES.has(failure.error.type as ErrorType), failure.error.type).toBe(true);
    expect(failure.error.message.length).toBeGreaterThan(0);
  }
  expect(failed.map(({ index, error }) => ({ index, type: error.type, code: error.code }))).toEqual(
    expected.map(({ index, type, code }) => ({ index, type, code })),
  );
}

/** One captured log line. */
export interface LogLine {
  readonly level: 'debug' | 'info' | 'warn' | 'error';
  readonly message: string;
  readonly extra?: Record<string, unknown>;
  /** Set for the AWS SDK's own lines; unset for the functions' logger. */
  readonly source?: 'sdk';
}

/** Invariant 4: a case the design handles logs no ERROR. */
export function checkNoErrorLogs(logs: readonly LogLine[]): void {
  const errors = logs.filter((line) => line.level === 'error');
  expect(errors, 'ERROR log lines in a case the design handles').toEqual([]);
}

/**
 * Invariants 1 and 2 over the whole bucket at once: every manifest matches its objects, no image
 * sits outside a manifest, and no bytes are stored under two keys. Returns the manifests checked.
 */
export async function checkBucket(s3: S3Client, bucket: string): Promise<number> {
  const objects = await storedObjects(s3, bucket, 'generations/');
  // A generation's prefix is `generations/{id}/`; its thumbnails sit one level below.
  const prefixes = new Set([...objects.keys()].map((key) => /^generations\/[^/]+\//.exec(key)?.[0] ?? key));
  let manifests = 0;
  for (const prefix of prefixes) {
    const own = new Map([...objects].filter(([key]) => key.startsWith(prefix)));
    if (checkManifest(own, prefix)) manifests += 1;
  }
  checkNoDuplicates(objects, new Map());
  return manifests;
}
