/**
 * Named errors shared by the Lambdas and the state machine. The workflow's Retry and Catch rules
 * import the name lists below, so code and infrastructure cannot drift apart: a Lambda error's
 * `name` becomes the Step Functions error name.
 */

/** Stable, client-facing classification of a failure (also used by the HTTP API). */
export type ErrorType =
  | 'invalid_request'
  | 'content_policy'
  | 'auth'
  | 'quota_exhausted'
  | 'rate_limited'
  | 'upstream_error'
  | 'timeout'
  | 'expired'
  | 'canceled'
  | 'storage_error'
  | 'result_rejected'
  | 'internal_error';

interface ErrorDetails {
  /** The upstream (DashScope) error code, when there is one. */
  readonly upstreamCode?: string;
  /** The upstream request id, for support tickets. */
  readonly requestId?: string;
  /** The HTTP status that carried the error. */
  readonly httpStatus?: number;
  readonly cause?: unknown;
}

/**
 * Base class: every error this project throws on purpose has a stable `name` and `type`.
 * Names are string literals, not `constructor.name`, so minified bundles keep them.
 */
export abstract class GenerationError extends Error {
  abstract readonly type: ErrorType;
  /** Whether the same call may succeed if repeated later. */
  abstract readonly retryable: boolean;
  readonly upstreamCode?: string;
  readonly requestId?: string;
  readonly httpStatus?: number;

  constructor(message: string, details: ErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.upstreamCode = details.upstreamCode;
    this.requestId = details.requestId;
    this.httpStatus = details.httpStatus;
  }
}

// Retryable: the request reached nothing durable, or DashScope asked us to slow down.

/** DashScope answered 429 with a rate-limit code (not a spent quota). */
export class DashScopeThrottledError extends GenerationError {
  override readonly name = 'DashScopeThrottledError';
  readonly type = 'rate_limited';
  readonly retryable = true;
}

/** DashScope answered 5xx or 408, or a body that is not the documented shape. */
export class DashScopeUnavailableError extends GenerationError {
  override readonly name = 'DashScopeUnavailableError';
  readonly type = 'upstream_error';
  readonly retryable = true;
}

/** No answer in time, or the connection failed. For a submit, a task may or may not exist. */
export class DashScopeTimeoutError extends GenerationError {
  override readonly name = 'DashScopeTimeoutError';
  readonly type = 'timeout';
  readonly retryable = true;
}

/** S3 could not be reached or refused a write for a transient reason. */
export class StorageUnavailableError extends GenerationError {
  override readonly name = 'StorageUnavailableError';
  readonly type = 'storage_error';
  readonly retryable = true;
}

// Permanent: repeating the call gives the same answer.

/** The generation request breaks a documented rule (ours or DashScope's `InvalidParameter`). */
export class InvalidRequestError extends GenerationError {
  override readonly name = 'InvalidRequestError';
  readonly type = 'invalid_request';
  readonly retryable = false;
}

/** DashScope's moderation refused the prompt or the image (`DataInspectionFailed`). */
export class ContentPolicyError extends GenerationError {
  override readonly name = 'ContentPolicyError';
  readonly type = 'content_policy';
  readonly retryable = false;
}

/** The API key is wrong, or the account, workspace or model is not enabled. */
export class DashScopeAuthError extends GenerationError {
  override readonly name = 'DashScopeAuthError';
  readonly type = 'auth';
  readonly retryable = false;
}

/** The account's free quota is spent or it is in arrears. */
export class QuotaExhaustedError extends GenerationError {
  override readonly name = 'QuotaExhaustedError';
  readonly type = 'quota_exhausted';
  readonly retryable = false;
}

/** Any other documented 4xx answer (e.g. cancelling a task that is no longer PENDING). */
export class DashScopeRejectedError extends GenerationError {
  override readonly name = 'DashScopeRejectedError';
  readonly type = 'upstream_error';
  readonly retryable = false;
}

/** Every image of a succeeded task failed to download or was rejected; nothing was stored. */
export class NoImagesPersistedError extends GenerationError {
  override readonly name = 'NoImagesPersistedError';
  readonly type = 'result_rejected';
  readonly retryable = false;
}

/** The DashScope task no longer exists (UNKNOWN): its 24 h retention passed. */
export class TaskExpiredError extends GenerationError {
  override readonly name = 'TaskExpiredError';
  readonly type = 'expired';
  readonly retryable = false;
}

/**
 * What Step Functions reports when a Lambda dies without throwing one of our errors: out of memory,
 * its own timeout, a crashed runtime. Poll and Persist are safe to run again (a query; an
 * idempotent copy), so the workflow retries them on these too. Submit is not retried on them: its
 * task may exist, and it retries only the DashScope answers that prove no task was created.
 */
export const FUNCTION_CRASH_ERROR_NAMES = [
  'Lambda.Unknown',
  'Sandbox.Timedout',
  'Runtime.ExitError',
] as const;

/** Error names on which the workflow retries a Lambda state, with backoff and jitter. */
export const RETRYABLE_ERROR_NAMES = [
  'DashScopeThrottledError',
  'DashScopeUnavailableError',
  'DashScopeTimeoutError',
  'StorageUnavailableError',
  ...FUNCTION_CRASH_ERROR_NAMES,
] as const;

/** Error names that end the generation at once. */
export const PERMANENT_ERROR_NAMES = [
  'InvalidRequestError',
  'ContentPolicyError',
  'DashScopeAuthError',
  'QuotaExhaustedError',
  'DashScopeRejectedError',
  'NoImagesPersistedError',
  'TaskExpiredError',
] as const;

/**
 * Errors the workflow itself raises from a Fail state (no Lambda throws them). Their names are
 * the `Error` of the failed execution.
 */
export const WORKFLOW_ERROR = {
  taskFailed: 'DashScopeTaskFailed',
  taskCanceled: 'DashScopeTaskCanceled',
  taskExpired: 'DashScopeTaskExpired',
  deadlineExceeded: 'DeadlineExceeded',
  pollLimitExceeded: 'PollLimitExceeded',
} as const;

/**
 * The stable type of each error name a failed execution can carry: the Lambdas' named errors,
 * the workflow's own Fail states, and Step Functions' timeout. Anything else is `internal_error`.
 */
export const ERROR_TYPE_BY_NAME: Readonly<Record<string, ErrorType>> = {
  DashScopeThrottledError: 'rate_limited',
  DashScopeUnavailableError: 'upstream_error',
  DashScopeTimeoutError: 'timeout',
  StorageUnavailableError: 'storage_error',
  InvalidRequestError: 'invalid_request',
  ContentPolicyError: 'content_policy',
  DashScopeAuthError: 'auth',
  QuotaExhaustedError: 'quota_exhausted',
  DashScopeRejectedError: 'upstream_error',
  NoImagesPersistedError: 'result_rejected',
  TaskExpiredError: 'expired',
  [WORKFLOW_ERROR.taskFailed]: 'upstream_error',
  [WORKFLOW_ERROR.taskCanceled]: 'canceled',
  [WORKFLOW_ERROR.taskExpired]: 'expired',
  [WORKFLOW_ERROR.deadlineExceeded]: 'timeout',
  [WORKFLOW_ERROR.pollLimitExceeded]: 'timeout',
  'States.Timeout': 'timeout',
};

/** Turns any thrown value into a message that is safe to log: no stack, no secrets we know of. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}
