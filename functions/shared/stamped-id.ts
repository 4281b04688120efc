import { randomBytes } from 'node:crypto';

/**
 * An id that sorts by time and is unique enough: `<prefix>-<UTC yyyymmddhhmmss>-<hex>`, valid as
 * an execution name and an S3 prefix (`gen-…` for a generation, `batch-…` for a batch).
 */
export function stampedId(prefix: string, now: number, randomByteCount: number): string {
  const stamp = new Date(now)
    .toISOString()
    .replace(/[-:.TZ]/g, '')
    .slice(0, 14);
  return `${prefix}-${stamp}-${randomBytes(randomByteCount).toString('hex')}`;
}
