import { Duration } from 'aws-cdk-lib';
import { JitterType, type RetryProps } from 'aws-cdk-lib/aws-stepfunctions';
import { BEFORE_REQUEST_ERROR_NAMES, RETRYABLE_ERROR_NAMES } from '../../functions/shared/errors.js';

/**
 * One Retry rule with every bound stated, so the time it can take is known at synth:
 * `maxAttempts` retries, waiting `intervalSeconds × backoffRate^k` (capped at `maxDelaySeconds`)
 * before retry k, with full jitter (each wait a random share of that, never more).
 */
export interface BoundedRetry {
  readonly errors: readonly string[];
  readonly maxAttempts: number;
  readonly intervalSeconds: number;
  readonly backoffRate: number;
  readonly maxDelaySeconds: number;
}

/**
 * Lambda refused the invocation for concurrency (the account's, or a function's reserved
 * concurrency) or its invoke rate: the function never ran, so any Task may run it again, Submit
 * included. What Step Functions reports for Lambda's `TooManyRequestsException`.
 */
export const LAMBDA_THROTTLED_ERRORS = ['Lambda.TooManyRequestsException'] as const;

/**
 * Lambda's own service failed around an invocation, which may or may not have run: harmless to
 * repeat for Poll, Persist and Notify (Notify's ids make a repeat deduplicable), ambiguous for
 * Submit. `States.Timeout` (the Task's own timeout, which only a hung invocation reaches) is as
 * ambiguous.
 */
export const LAMBDA_SERVICE_ERRORS = [
  'Lambda.ServiceException',
  'Lambda.AWSLambdaException',
  'Lambda.SdkClientException',
  'Lambda.ClientExecutionTimeoutException',
  'States.Timeout',
] as const;

/**
 * Added to a function's own timeout to make its Task's `TimeoutSeconds`: Lambda's init phase
 * (up to 10 s, not part of the function timeout) and the invoke's round trip, with room to spare.
 * So a function that runs out of time fails with its own error (`Lambda.Unknown`, retried where
 * that is safe) before the Task times out. 30 s also keeps Poll's Task at the 60 s that
 * aws-local-stepfunctions applies to every Task without a timeout, as it did before.
 */
export const TASK_TIMEOUT_MARGIN_SECONDS = 30;

/** A Lambda throttle: 10 retries over about 5 minutes, enough for a burst to drain. */
export const LAMBDA_THROTTLED_RETRY: BoundedRetry = {
  errors: LAMBDA_THROTTLED_ERRORS,
  maxAttempts: 10,
  intervalSeconds: 1,
  backoffRate: 2,
  maxDelaySeconds: 60,
};

/**
 * Submit's retries (see docs/decisions/0004-submitting-twice.md): once at most after an ambiguous
 * failure; DashScope's 429 (no task was created) up to 20 times, since its 2 submits/s spread a
 * burst of N executions over N/2 seconds; its other answered errors up to 6 times; a Lambda
 * throttle like every Task.
 */
export const SUBMIT_RETRIES: readonly BoundedRetry[] = [
  {
    // A task may or may not exist at DashScope: our request got no answer, or Lambda's service
    // failed around an invocation that may have run. Once at most, so a lost answer costs at most
    // one extra task.
    errors: ['DashScopeTimeoutError', ...LAMBDA_SERVICE_ERRORS],
    maxAttempts: 1,
    intervalSeconds: 5,
    backoffRate: 1,
    maxDelaySeconds: 5,
  },
  {
    // DashScope takes 2 submits/s per account, so N executions started together need about N/2
    // seconds of retries. With 6 attempts, ~6 % of a burst of 100 failed (npm run bench:poll's
    // simulation); 20 attempts of full-jitter backoff carry bursts of several hundred.
    errors: ['DashScopeThrottledError'],
    maxAttempts: 20,
    intervalSeconds: 2,
    backoffRate: 2,
    maxDelaySeconds: 60,
  },
  {
    // Errors after which DashScope certainly created no task: safe to submit again. A failed
    // read of the API key's secret is one: it happens before the submit is sent.
    errors: RETRYABLE_ERROR_NAMES.filter(
      (name) =>
        (name.startsWith('DashScope') || (BEFORE_REQUEST_ERROR_NAMES as readonly string[]).includes(name)) &&
        name !== 'DashScopeTimeoutError' &&
        name !== 'DashScopeThrottledError',
    ),
    maxAttempts: 6,
    intervalSeconds: 2,
    backoffRate: 2,
    maxDelaySeconds: 60,
  },
  LAMBDA_THROTTLED_RETRY,
];

/** Poll runs again safely: every retryable error, a crash and Lambda's service errors share one count. */
export const POLL_RETRIES: readonly BoundedRetry[] = [
  {
    errors: [...RETRYABLE_ERROR_NAMES, ...LAMBDA_SERVICE_ERRORS],
    maxAttempts: 8,
    intervalSeconds: 2,
    backoffRate: 2,
    maxDelaySeconds: 60,
  },
  LAMBDA_THROTTLED_RETRY,
];

/** Persist runs again safely (a retry reuses what was stored), but each run may be long: fewer, slower retries. */
export const PERSIST_RETRIES: readonly BoundedRetry[] = [
  {
    errors: [...RETRYABLE_ERROR_NAMES, ...LAMBDA_SERVICE_ERRORS],
    maxAttempts: 6,
    intervalSeconds: 5,
    backoffRate: 2,
    maxDelaySeconds: 120,
  },
  LAMBDA_THROTTLED_RETRY,
];

/** Notify's failures are caught, never fatal; its repeats carry the same ids, so receivers drop them. */
export const NOTIFY_RETRIES: readonly BoundedRetry[] = [
  {
    errors: LAMBDA_SERVICE_ERRORS,
    maxAttempts: 6,
    intervalSeconds: 2,
    backoffRate: 2,
    maxDelaySeconds: 30,
  },
  LAMBDA_THROTTLED_RETRY,
];

/**
 * Admit only stores an entry and rings the dispatcher, and a second run keeps the entry's place:
 * Lambda's service errors and its throttle are retried. Its own timeout (`States.Timeout`) is the
 * queue's limit, and is not retried: the generation waited too long.
 */
export const ADMIT_RETRIES: readonly BoundedRetry[] = [
  {
    errors: LAMBDA_SERVICE_ERRORS.filter((name) => name !== 'States.Timeout'),
    maxAttempts: 6,
    intervalSeconds: 2,
    backoffRate: 2,
    maxDelaySeconds: 30,
  },
  LAMBDA_THROTTLED_RETRY,
];

/** The CDK Retry props of a rule: full jitter, every bound explicit. */
export function retryProps(retry: BoundedRetry): RetryProps {
  return {
    errors: [...retry.errors],
    maxAttempts: retry.maxAttempts,
    interval: Duration.seconds(retry.intervalSeconds),
    backoffRate: retry.backoffRate,
    maxDelay: Duration.seconds(retry.maxDelaySeconds),
    jitterStrategy: JitterType.FULL,
  };
}

/** The longest a rule can wait in all: each retry's interval, before jitter, capped. */
export function retryWaitSeconds(retry: BoundedRetry): number {
  let total = 0;
  for (let k = 0; k < retry.maxAttempts; k++) {
    total += Math.min(retry.intervalSeconds * retry.backoffRate ** k, retry.maxDelaySeconds);
  }
  return total;
}

/**
 * The longest a Task can take, every rule spent: each attempt (the first and every retry of every
 * rule, which count separately) up to the Task's timeout, plus every rule's waits.
 */
export function taskWorstCaseSeconds(timeoutSeconds: number, retries: readonly BoundedRetry[]): number {
  const attempts = 1 + retries.reduce((sum, retry) => sum + retry.maxAttempts, 0);
  return timeoutSeconds * attempts + retries.reduce((sum, retry) => sum + retryWaitSeconds(retry), 0);
}
