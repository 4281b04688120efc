import { mkdtemp, rm, writeFile } from 'node:fs/promises';
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

describe('startLocalS3 over a folder a killed process wrote in', () => {
  it('drops the objects whose write was cut short, so listings work and show only whole objects', async () => {
    // Prepare: three objects stored whole, then the state a SIGKILL mid-write leaves: one with
    // its metadata cut short, one with only its content written.
    const folder = await mkdtemp(path.join(tmpdir(), 'local-s3-killed-'));
    const first = await startLocalS3({ directory: folder });
    for (const key of ['generations/a/1.png', 'generations/a/2.png', 'generations/a/3.png']) {
      await first.client.send(new PutObjectCommand({ Bucket: first.bucket, Key: key, Body: 'image' }));
    }
    await first.close();
    await writeFile(first.objectPath('generations/a/2.png').replace('_object', '_metadata.json'), '{"cont');
    await rm(`${first.objectPath('generations/a/3.png')}.md5`);
    await rm(first.objectPath('generations/a/3.png').replace('_object', '_metadata.json'));

    // Act
    const second = await startLocalS3({ directory: folder });
    try {
      const listed = await second.client.send(
        new ListObjectsV2Command({ Bucket: second.bucket, Prefix: 'generations/a/' }),
      );

      // Assert: the whole object stays, the two cut short are gone, and the listing answers.
      expect(listed.Contents?.map((object) => object.Key)).toEqual(['generations/a/1.png']);
    } finally {
      await second.close();
      await rm(folder, { recursive: true, force: true });
    }
  });
});
