import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalS3, startLocalS3 } from '../../local/s3.js';

/** The local S3 adapter behaves as S3 does where s3rver alone would not. */
let s3: LocalS3;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'local-s3-test-'));
  s3 = await startLocalS3({ directory: dir });
});

afterAll(async () => {
  await s3.close();
  await rm(dir, { recursive: true, force: true });
});

describe('localS3Client', () => {
  it('keeps nothing of a PutObject whose body broke off, as S3 keeps nothing', async () => {
    // Prepare: a body that sends part of what it announces, then nothing, until the upload is
    // aborted, as copyImage aborts it when its download breaks off.
    let sent = 0;
    const body = new Readable({
      read() {
        sent += 1;
        if (sent <= 3) this.push(Buffer.alloc(64, sent));
      },
    });
    const abort = new AbortController();
    setTimeout(() => abort.abort(new Error('the download broke off')), 300);

    // Act
    const put = s3.client.send(
      new PutObjectCommand({ Bucket: s3.bucket, Key: 'broken/0.png', Body: body, ContentLength: 100_000 }),
      { abortSignal: abort.signal },
    );

    // Assess
    await expect(put).rejects.toThrow();
    const listed = await s3.client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: 'broken/' }));
    expect(listed.Contents ?? []).toEqual([]);
  });
});
