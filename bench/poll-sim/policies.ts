import {
  adaptivePollPolicy,
  type PollPolicy,
  type PollPolicyInput,
} from '../../functions/shared/poll-policy.js';

/** Never past the deadline, never under 1 s: the rules any policy must keep for the Wait state. */
function capped(seconds: number, input: PollPolicyInput): number {
  const untilDeadline = Number.isFinite(input.secondsUntilDeadline)
    ? Math.ceil(input.secondsUntilDeadline)
    : 0;
  return Math.max(1, Math.min(seconds, untilDeadline));
}

/** A fixed-interval loop, as in the AWS job-poller sample. */
export function fixedPolicy(seconds: number): PollPolicy {
  return {
    name: `fixed-${seconds}s`,
    nextPollSeconds: (input) => capped(seconds, input),
    shouldListQueue: () => false,
  };
}

/** The official SDKs' `wait()`: 1, 1, 2, 2, 2, 4, 4, 4, then 5 s, whatever the task does. */
const SDK_SCHEDULE = [1, 1, 2, 2, 2, 4, 4, 4];
export const sdkPolicy: PollPolicy = {
  name: 'sdk',
  nextPollSeconds: (input) => capped(SDK_SCHEDULE[input.pollCount] ?? 5, input),
  shouldListQueue: () => false,
};

/** The policies the benchmark compares; `adaptive` is the one the workflow's Lambdas use. */
export const POLICIES: readonly PollPolicy[] = [
  fixedPolicy(5),
  fixedPolicy(30),
  sdkPolicy,
  adaptivePollPolicy,
];
