import type { GenerationStatus } from './workflow-state.js';

export interface PollPolicyInput {
  readonly status: Extract<GenerationStatus, 'queued' | 'running'>;
  /** Polls made so far (0 right after submit). */
  readonly pollCount: number;
  /** Seconds left before the generation's deadline. */
  readonly secondsUntilDeadline: number;
}

/** The official SDKs' `wait()` schedule: 1, 1, 2, 2, 2, 4, 4, 4, then 5 s. */
const SDK_SCHEDULE = [1, 1, 2, 2, 2, 4, 4, 4];
const SDK_CAP_SECONDS = 5;
/** A queued task sits behind others for minutes: poll it less often. */
const QUEUED_SECONDS = 10;

/**
 * Seconds to wait before the next poll. A first, simple policy: the SDK schedule while running,
 * a slower fixed pace while queued (never faster than the SDK schedule), and never past the
 * deadline, so the poll that sees the deadline comes on time. Always an integer ≥ 1, as the
 * Wait state requires.
 */
export function nextPollSeconds(input: PollPolicyInput): number {
  const sdk = SDK_SCHEDULE[input.pollCount] ?? SDK_CAP_SECONDS;
  const wanted =
    input.status === 'queued' ? Math.max(sdk, Math.min(QUEUED_SECONDS, 1 + input.pollCount)) : sdk;
  const remaining = Number.isFinite(input.secondsUntilDeadline) ? Math.ceil(input.secondsUntilDeadline) : 0;
  return Math.max(1, Math.min(wanted, remaining));
}
