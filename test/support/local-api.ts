import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AdjustableClock } from '../../functions/shared/clock.js';
import { type LocalApi, type LocalApiOptions, startLocalApi } from '../../local/local-api.js';

/**
 * A local API for a test file: a free port, its own s3rver and index folders, its own webhook
 * secret (not the checkout's `.local/webhook-secret`), waits in virtual time.
 */
export interface TestApi {
  readonly api: LocalApi;
  /** A fresh temporary folder, removed by `close`. */
  readonly dir: string;
  close(): Promise<void>;
}

/** Starts the local API as `npm start` serves it, with everything a test must not share. */
export async function startTestApi(prefix: string, options: LocalApiOptions = {}): Promise<TestApi> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  const api = await startLocalApi({
    port: 0,
    s3Directory: path.join(dir, 's3'),
    dynamoDirectory: path.join(dir, 'dynamodb'),
    webhookSecret: `whsec_${randomBytes(32).toString('base64')}`,
    virtualWaits: new AdjustableClock(),
    retryIntervalMs: 5,
    ...options,
  });
  return {
    api,
    dir,
    async close() {
      await api.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
