import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** Looks like an Alibaba Cloud AccessKey id, so clients that log or parse it see the usual form. */
const ACCESS_KEY_ID = 'LTAI5tLocalDashScopeEmu';

/**
 * Pre-signs result URLs the way Alibaba OSS does (V1 query-string signing: HMAC-SHA1 over the
 * method, expiry and resource, base64), with a secret that lives only as long as this emulator,
 * so URLs from another run or with a changed path or expiry are refused.
 */
export class ResultUrlSigner {
  readonly #secret = randomBytes(32);

  /** The full URL of `path` on `origin`, valid until `expires` (unix seconds). */
  url(origin: string, path: string, expires: number): string {
    const url = new URL(path, origin);
    url.searchParams.set('Expires', String(expires));
    url.searchParams.set('OSSAccessKeyId', ACCESS_KEY_ID);
    url.searchParams.set('Signature', this.#sign(path, String(expires)));
    return url.toString();
  }

  /** Whether the query parameters were produced by `url` for this `path`. */
  verify(path: string, expires: string, accessKeyId: string, signature: string): boolean {
    if (accessKeyId !== ACCESS_KEY_ID) return false;
    const expected = Buffer.from(this.#sign(path, expires));
    const given = Buffer.from(signature);
    return expected.length === given.length && timingSafeEqual(expected, given);
  }

  #sign(path: string, expires: string): string {
    return createHmac('sha1', this.#secret).update(`GET\n\n\n${expires}\n${path}`).digest('base64');
  }
}
