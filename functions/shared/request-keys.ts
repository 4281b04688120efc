/**
 * The request-file key contract, shared by the trigger (which checks a key) and the
 * infrastructure (whose S3 rule matches the same patterns): kept in one place so the two agree.
 */

/** Keys of request files the trigger reads: one request (`.json`) or one per line (`.jsonl`). */
export const REQUEST_OBJECT_PATTERNS = ['requests/*.json', 'requests/*.jsonl'] as const;

/** Suffix of the report written next to a request file (matches neither pattern above). */
export const REPORT_SUFFIX = '.result';

/** Whether a key names a request file (and not, say, its report). */
export function isRequestFileKey(key: string): boolean {
  return key.startsWith('requests/') && (key.endsWith('.json') || key.endsWith('.jsonl'));
}

/**
 * Where the API writes the requests of a batch it was sent (`requests/batches/<batch id>.jsonl`):
 * the trigger starts them as it starts any request file, within the batch the API made.
 */
export const API_BATCH_PREFIX = 'requests/batches/';
