import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { DeleteObjectCommand, ListObjectsV2Command, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import S3rver from 's3rver';

/** The bucket the local pipeline writes to. */
export const LOCAL_BUCKET = 'sd35-local-images';

/** An object just stored in the local bucket, as S3's "Object Created" event names it. */
export interface CreatedObject {
  readonly bucket: string;
  readonly key: string;
  /** The object's ETag, without quotes. */
  readonly etag?: string;
}

export interface LocalS3 {
  /** `http://127.0.0.1:PORT` */
  readonly endpoint: string;
  readonly bucket: string;
  /** Where s3rver keeps the objects on disk. */
  readonly directory: string;
  /** A client configured for s3rver (path-style, static credentials, no streaming checksums). */
  readonly client: S3Client;
  /** Path of the file s3rver stores an object's bytes in. */
  objectPath(key: string): string;
  /**
   * Calls `listener` for every object created in the bucket (PutObject, CopyObject, a completed
   * multipart upload, a POST upload), as S3 sends "Object Created" to EventBridge: synchronously,
   * once the object is stored and before the client has its answer, so a listener that has work
   * to do should queue it. A listener that throws does not fail the upload (the error is emitted
   * as a process warning). Returns the unsubscribe.
   */
  onObjectCreated(listener: (object: CreatedObject) => void): () => void;
  close(): Promise<void>;
}

/**
 * A client for s3rver at `endpoint`: path-style, static credentials, and no flexible checksums,
 * with which s3rver would store a streamed upload with its aws-chunked framing inside the object
 * (see toolchain.md).
 */
export function localS3Client(endpoint: string, extra: S3ClientConfig = {}): S3Client {
  const client = new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    ...extra,
  });
  discardFailedPuts(client);
  return client;
}

/**
 * S3 never stores an object whose PutObject failed (a broken body, an aborted request). s3rver
 * does: it writes a streamed body straight to the object's file as it arrives, keeps what came
 * before the break, and may finish writing it just after the client saw the failure. So, on this
 * client only, a failed PutObject of a streamed body is followed by deletes until a listing
 * shows the key gone (a few tries, on the failure path only), and then rethrown. Bodies sent
 * whole (strings, buffers: manifests, records) are left alone, so a failed overwrite of one
 * keeps the earlier object, as on S3.
 */
function discardFailedPuts(client: S3Client): void {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      try {
        return await next(args);
      } catch (error) {
        const input = args.input as { Bucket?: string; Key?: string; Body?: unknown };
        const streamed = input.Body instanceof Readable || input.Body instanceof ReadableStream;
        if (context.commandName === 'PutObjectCommand' && streamed && input.Bucket && input.Key) {
          await deleteUntilGone(client, input.Bucket, input.Key);
        }
        throw error;
      }
    },
    { step: 'initialize', name: 's3rverDiscardFailedPut' },
  );
}

async function deleteUntilGone(client: S3Client, bucket: string, key: string): Promise<void> {
  for (let attempt = 0; attempt < 5; attempt++) {
    await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key })).catch(() => undefined);
    await sleep(25 * 2 ** attempt);
    const listed = await client
      .send(new ListObjectsV2Command({ Bucket: bucket, Prefix: key, MaxKeys: 1 }))
      .catch(() => undefined);
    if (listed && !(listed.Contents ?? []).some((object) => object.Key === key)) return;
  }
}

/**
 * Starts s3rver on 127.0.0.1 with its data in `directory` and the bucket created.
 * The client disables the SDK's default flexible checksums: with them, s3rver would store a
 * streamed upload with its aws-chunked framing inside the object (see toolchain.md).
 */
export async function startLocalS3(options: {
  directory: string;
  port?: number;
  bucket?: string;
}): Promise<LocalS3> {
  const bucket = options.bucket ?? LOCAL_BUCKET;
  await mkdir(options.directory, { recursive: true });
  await dropInterruptedWrites(options.directory);
  const server = new S3rver({
    address: '127.0.0.1',
    port: options.port ?? 0,
    directory: options.directory,
    silent: true,
    configureBuckets: [{ name: bucket }],
  });
  const objectPath = (key: string) => path.join(options.directory, bucket, `${key}._S3rver_object`);
  const created = objectCreatedEvents(server, bucket, objectPath);
  const address = await server.run();
  const endpoint = `http://127.0.0.1:${address.port}`;
  const client = localS3Client(endpoint);
  return {
    endpoint,
    bucket,
    directory: options.directory,
    client,
    objectPath,
    onObjectCreated: created.subscribe,
    async close() {
      created.stop();
      client.destroy();
      server.httpServer?.closeAllConnections();
      await server.close();
    },
  };
}

/**
 * Removes the objects a process killed mid-write left in an s3rver folder. s3rver writes an
 * object's content, then its MD5, then its metadata, and answers the PUT only after all three:
 * an object without both, or with metadata cut short, was never acknowledged, as an S3 PUT that
 * failed leaves nothing on AWS. Left in place, it fails every listing of its prefix with
 * InternalError (the metadata does not parse) or shows a truncated object. Returns the keys'
 * object files removed, relative to `directory`.
 */
export async function dropInterruptedWrites(directory: string): Promise<string[]> {
  const files = await readdir(directory, { recursive: true }).catch(() => [] as string[]);
  const objects = files.filter((file) => file.endsWith(OBJECT_SUFFIX));
  const dropped: string[] = [];
  for (const object of objects) {
    const base = path.join(directory, object.slice(0, -OBJECT_SUFFIX.length));
    const complete = await Promise.all([
      readFile(`${base}._S3rver_metadata.json`, 'utf8')
        .then((text) => typeof JSON.parse(text) === 'object')
        .catch(() => false),
      stat(`${base}._S3rver_object.md5`).then(
        (info) => info.size > 0,
        () => false,
      ),
    ]);
    if (complete.every(Boolean)) continue;
    await Promise.all(
      ['_S3rver_object', '_S3rver_object.md5', '_S3rver_metadata.json'].map((suffix) =>
        rm(`${base}.${suffix}`, { force: true }),
      ),
    );
    dropped.push(object);
  }
  return dropped;
}

const OBJECT_SUFFIX = '._S3rver_object';

/** The part of an s3rver event record read here (lib/models/event.js). */
interface S3rverEventRecord {
  readonly eventName?: string;
  readonly s3?: {
    readonly bucket?: { readonly name?: string };
    readonly object?: { key?: string; eTag?: string };
  };
}

/**
 * The objects created in `bucket`, from the `'event'`s s3rver emits on its Koa app (an
 * EventEmitter; local/types/s3rver.d.ts does not declare it). s3rver 3.7.1 names them
 * `ObjectCreated:Put`, `:Copy`, and `:Post` for both a POST upload and a completed multipart
 * upload (it has no `:CompleteMultipartUpload`). Its `:Copy` record carries no ETag, which S3's
 * has: it is read from the `.md5` file s3rver has just written beside the copy.
 */
function objectCreatedEvents(
  server: S3rver,
  bucket: string,
  objectPath: (key: string) => string,
): { subscribe: LocalS3['onObjectCreated']; stop: () => void } {
  if (!(server instanceof EventEmitter))
    throw new Error('s3rver is not an EventEmitter: object events unavailable');
  const emitter: EventEmitter = server;
  const listeners = new Set<(object: CreatedObject) => void>();
  const onEvent = (event: { Records?: readonly S3rverEventRecord[] }) => {
    for (const record of event.Records ?? []) {
      const key = record.s3?.object?.key;
      if (!record.eventName?.startsWith('ObjectCreated:') || record.s3?.bucket?.name !== bucket || !key)
        continue;
      const object: CreatedObject = {
        bucket,
        key,
        etag: record.s3?.object?.eTag ?? storedEtag(objectPath(key)),
      };
      for (const listener of [...listeners]) {
        try {
          listener(object);
        } catch (error) {
          process.emitWarning(`An onObjectCreated listener threw for ${key}: ${String(error)}`);
        }
      }
    }
  };
  emitter.on('event', onEvent);
  return {
    subscribe(listener) {
      // A wrapper per subscription, so the same function subscribed twice is called twice.
      const subscribed = (object: CreatedObject) => listener(object);
      listeners.add(subscribed);
      return () => void listeners.delete(subscribed);
    },
    stop() {
      listeners.clear();
      emitter.off('event', onEvent);
    },
  };
}

/** The MD5 s3rver keeps beside an object, its ETag; undefined if it cannot be read. */
function storedEtag(objectFile: string): string | undefined {
  try {
    return readFileSync(`${objectFile}.md5`, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}
