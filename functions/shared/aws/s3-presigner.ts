import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { MAX_URL_EXPIRY_SECONDS } from '../config.js';
import type { Presigner } from '../presigned-url.js';

/**
 * Seconds a URL signed at `now` can honestly live: the requested lifetime, capped at
 * {@link MAX_URL_EXPIRY_SECONDS} and at the signing credentials' expiration when it is known.
 * At least 1 (S3's lower bound).
 */
export function urlLifetimeSeconds(
  requestedSeconds: number,
  credentialsExpiration: Date | undefined,
  now: number,
): number {
  const capped = Math.min(requestedSeconds, MAX_URL_EXPIRY_SECONDS);
  if (!credentialsExpiration) return Math.max(1, Math.floor(capped));
  const remaining = Math.floor((credentialsExpiration.getTime() - now) / 1000);
  return Math.max(1, Math.min(Math.floor(capped), remaining));
}

export interface S3PresignerOptions {
  readonly s3: S3Client;
  readonly bucket: string;
  /** The configured lifetime of a link, in seconds. */
  readonly expirySeconds: number;
  /** Wall-clock time: links are used in real time, whatever clock the workflow runs on. @default Date.now */
  readonly now?: () => number;
}

/**
 * Presigns GETs of objects in one bucket with the S3 client's own credentials, each link's
 * lifetime capped at those credentials' expiration (see {@link urlLifetimeSeconds}) and reported
 * as `expiresAt`.
 */
export function createS3Presigner(options: S3PresignerOptions): Presigner {
  const now = options.now ?? Date.now;
  return async (key) => {
    const signingTime = now();
    // The client's provider is memoized: this is the identity getSignedUrl signs with (or a
    // fresher one, refreshed in between, which only lives longer).
    const credentials = await options.s3.config.credentials();
    const seconds = urlLifetimeSeconds(options.expirySeconds, credentials.expiration, signingTime);
    const url = await getSignedUrl(options.s3, new GetObjectCommand({ Bucket: options.bucket, Key: key }), {
      expiresIn: seconds,
      signingDate: new Date(signingTime),
    });
    return { url, expiresAt: new Date(signingTime + seconds * 1000).toISOString() };
  };
}
