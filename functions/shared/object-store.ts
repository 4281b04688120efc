/** Where an object lives: a bucket, a key and, for a read, optionally one version of it. */
export interface ObjectLocation {
  readonly bucket: string;
  readonly key: string;
  /** Read this version; without it, the current one. */
  readonly versionId?: string;
}

/**
 * The object storage the domain reads small text objects from and writes JSON records and
 * reports to: S3 on AWS and locally (s3rver). Large, streamed uploads (Persist's images) are not
 * behind this port.
 */
export interface ObjectStore {
  /** The object's body as UTF-8 text, `''` when it has none. Throws the store's own error. */
  getText(location: ObjectLocation): Promise<string>;
  /**
   * Writes `value` as JSON (two-space indented, a trailing newline), `application/json`.
   * Throws the store's own error.
   */
  putJson(location: Omit<ObjectLocation, 'versionId'>, value: unknown): Promise<void>;
  /** Writes text as it is, with its content type (a JSONL file). Throws the store's own error. */
  putText(location: Omit<ObjectLocation, 'versionId'>, body: string, contentType: string): Promise<void>;
}
