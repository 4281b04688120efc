/** A presigned download link and the time it stops working. */
export interface PresignedUrl {
  readonly url: string;
  /** ISO 8601: the earlier of the configured lifetime and the signing credentials' expiration. */
  readonly expiresAt: string;
}

/** Signs a time-limited download link for one stored object key. */
export type Presigner = (key: string) => Promise<PresignedUrl>;
