import { S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { createS3Presigner, urlLifetimeSeconds } from '../../functions/shared/aws/s3-presigner.js';
import { MAX_URL_EXPIRY_SECONDS } from '../../functions/shared/config.js';

const NOW = Date.parse('2026-03-01T12:00:00.000Z');

/** An S3 client whose credentials are temporary and end at `expiration` (or say nothing). */
function s3With(expiration?: Date): S3Client {
  return new S3Client({
    region: 'eu-west-1',
    credentials: async () => ({
      accessKeyId: 'ASIAEXAMPLE',
      secretAccessKey: 'secret',
      sessionToken: 'session-token',
      ...(expiration ? { expiration } : {}),
    }),
  });
}

describe('urlLifetimeSeconds', () => {
  it('keeps the requested lifetime when the credentials outlive it', () => {
    expect(urlLifetimeSeconds(3600, new Date(NOW + 6 * 3600_000), NOW)).toBe(3600);
  });

  it('ends with the signing credentials when they expire first', () => {
    expect(urlLifetimeSeconds(3600, new Date(NOW + 900_000), NOW)).toBe(900);
  });

  it('never promises more than 12 hours, credentials known or not', () => {
    expect(urlLifetimeSeconds(7 * 86_400, undefined, NOW)).toBe(MAX_URL_EXPIRY_SECONDS);
    expect(urlLifetimeSeconds(7 * 86_400, new Date(NOW + 7 * 86_400_000), NOW)).toBe(MAX_URL_EXPIRY_SECONDS);
  });

  it('keeps at least 1 second (the least S3 accepts)', () => {
    expect(urlLifetimeSeconds(3600, new Date(NOW - 1000), NOW)).toBe(1);
  });
});

describe('createS3Presigner', () => {
  it('signs for the credentials’ remaining life and reports it as expiresAt', async () => {
    const presign = createS3Presigner({
      s3: s3With(new Date(NOW + 1200_000)),
      bucket: 'images',
      expirySeconds: 3600,
      now: () => NOW,
    });

    const { url, expiresAt } = await presign('generations/gen-1/0.png');

    expect(new URL(url).searchParams.get('X-Amz-Expires')).toBe('1200');
    expect(expiresAt).toBe('2026-03-01T12:20:00.000Z');
  });

  it('signs for the configured lifetime when the credentials outlive it', async () => {
    const presign = createS3Presigner({
      s3: s3With(new Date(NOW + 6 * 3600_000)),
      bucket: 'images',
      expirySeconds: 3600,
      now: () => NOW,
    });

    const { url, expiresAt } = await presign('generations/gen-1/0.png');

    expect(new URL(url).searchParams.get('X-Amz-Expires')).toBe('3600');
    expect(new URL(url).searchParams.get('X-Amz-Date')).toBe('20260301T120000Z');
    expect(expiresAt).toBe('2026-03-01T13:00:00.000Z');
  });

  it('signs the key it is given in the bucket it was built for', async () => {
    const presign = createS3Presigner({ s3: s3With(), bucket: 'images', expirySeconds: 60, now: () => NOW });

    const { url } = await presign('generations/gen-1/0.png');

    expect(new URL(url).host).toBe('images.s3.eu-west-1.amazonaws.com');
    expect(new URL(url).pathname).toBe('/generations/gen-1/0.png');
  });
});
