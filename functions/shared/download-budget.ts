/**
 * Persist's time budget for result downloads. Persist copies a task's images one after another,
 * each with its own tries, inside one Lambda invocation; these numbers must add up to well under
 * the function's timeout (the CDK tests hold the Persist function to {@link persistWorstCaseMs}).
 */
export const DOWNLOAD_BUDGET = {
  /** The most images a task has (the request's `n`). */
  maxImages: 4,
  /** Tries per image for transient failures, a stall included. */
  attempts: 3,
  /**
   * Deadline of one download, headers and whole body. A 1024×1024 PNG of a few MB needs well
   * under 10 s at the throughput floor below; a slower download is abandoned and tried again.
   */
  timeoutMs: 18_000,
  /** The first backoff between tries of one image; it doubles for each further try. */
  backoffMs: 250,
  /** Below this throughput, measured over `stallWindowMs`, a download is stalled. */
  minBytesPerSecond: 16 * 1024,
  stallWindowMs: 5_000,
  /**
   * What the rest of one Persist run may take: the task query (10 s timeout), listing and
   * re-reading images an interrupted run stored, and the manifest.
   */
  reserveMs: 60_000,
} as const;

/** The longest one image's copy may take: every try runs to its deadline, plus the backoffs. */
export function imageWorstCaseMs(
  budget: Pick<typeof DOWNLOAD_BUDGET, 'attempts' | 'timeoutMs' | 'backoffMs'>,
): number {
  let backoff = 0;
  for (let attempt = 1; attempt < budget.attempts; attempt++)
    backoff += budget.backoffMs * 2 ** (attempt - 1);
  return budget.attempts * budget.timeoutMs + backoff;
}

/** The longest one Persist run may take with `budget`: every image at its worst, plus the reserve. */
export function persistWorstCaseMs(budget: typeof DOWNLOAD_BUDGET = DOWNLOAD_BUDGET): number {
  return budget.maxImages * imageWorstCaseMs(budget) + budget.reserveMs;
}
