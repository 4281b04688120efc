import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { ObjectStore } from '../object-store.js';

/** The S3 adapter of {@link ObjectStore}; errors are the SDK's, unchanged. */
export function createS3ObjectStore(s3: S3Client): ObjectStore {
  return {
    async getText({ bucket, key, versionId }) {
      const object = await s3.send(
        new GetObjectCommand({ Bucket: bucket, Key: key, ...(versionId ? { VersionId: versionId } : {}) }),
      );
      return (await object.Body?.transformToString('utf8')) ?? '';
    },
    async putJson({ bucket, key }, value) {
      await s3.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: key,
          Body: `${JSON.stringify(value, null, 2)}\n`,
          ContentType: 'application/json',
        }),
      );
    },
    async putText({ bucket, key }, body, contentType) {
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: contentType }));
    },
  };
}
