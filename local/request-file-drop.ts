import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { createS3ObjectStore } from '../functions/shared/aws/s3-object-store.js';
import { createTriggerHandler } from '../functions/trigger/handler.js';
import type { ObjectCreatedEvent, TriggerDeps, TriggerReport } from '../functions/trigger/trigger.js';
import type { CreatedObject } from './s3.js';

/**
 * The "Object Created" event EventBridge delivers to the trigger when S3 stores `object` (the
 * fields the trigger reads): the key as stored, the ETag without its quotes.
 */
export function objectCreatedEvent(object: CreatedObject): ObjectCreatedEvent {
  const etag = object.etag?.replace(/"/g, '');
  return {
    'detail-type': 'Object Created',
    detail: { bucket: { name: object.bucket }, object: { key: object.key, ...(etag ? { etag } : {}) } },
  };
}

/**
 * Does locally what S3 and EventBridge do on AWS: stores a request file under its key and hands
 * the trigger Lambda's code the "Object Created" event S3 would send. `redeliver` sends the very
 * same event again, as EventBridge may.
 */
export async function dropRequestFile(
  deps: Omit<TriggerDeps, 'objects'> & { readonly s3: S3Client; readonly bucket: string },
  key: string,
  body: string | Uint8Array,
): Promise<{ report: TriggerReport; redeliver: () => Promise<TriggerReport> }> {
  const put = await deps.s3.send(new PutObjectCommand({ Bucket: deps.bucket, Key: key, Body: body }));
  const trigger = createTriggerHandler({ ...deps, objects: createS3ObjectStore(deps.s3) });
  const event = objectCreatedEvent({ bucket: deps.bucket, key, etag: put.ETag });
  return { report: await trigger(event), redeliver: () => trigger(event) };
}
