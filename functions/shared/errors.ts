/**
 * Named errors shared by the Lambdas and the state machine. The workflow's Retry and Catch rules
 * import the name lists below, so code and infrastructure cannot drift apart: a Lambda error's
 * `name` becomes the Step Functions error name.
 */

/** Every stable, client-facing classification of a failure (also used by the HTTP API). */
export const ERROR_TYPES = [
  'invalid_request',
  'content_policy',
  'auth',
  'quota_exhausted',
  'rate_limited',
  'upstream_error',
  'timeout',
  'expired',
  'canceled',
  'storage_error',
  'result_rejected',
  'interrupted',
  'internal_error',
] as const;
export type ErrorType = (typeof ERROR_TYPES)[number];

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

/**
 * Secrets Manager could not be read for a transient reason (throttling, a 5xx, the network).
 * Retrying is safe everywhere: the read happens before any DashScope call is sent.
 */
export class SecretUnavailableError extends GenerationError {
  override readonly name = 'SecretUnavailableError';
  // A service the generation depends on failed, as for DashScope's own 5xx.
  readonly type = 'upstream_error';
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

/**
 * Any other documented 4xx answer (e.g. cancelling a task that is no longer PENDING), or an
 * answer asking again will not change (a succeeded task without the results it owes).
 */
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

/**
 * The secret cannot be read and will not be on a retry: it does not exist, this function may not
 * read it or decrypt it, or it holds no usable value.
 */
export class SecretAccessError extends GenerationError {
  override readonly name = 'SecretAccessError';
  readonly type = 'auth';
  readonly retryable = false;
}

/**
 * Every result download of a task stalled or ran past its deadline, on every try: nothing was
 * stored. Not retried by the workflow: each image already had its own retries.
 */
export class DownloadStalledError extends GenerationError {
  override readonly name = 'DownloadStalledError';
  readonly type = 'timeout';
  readonly retryable = false;
}

/**
 * The DashScope task no longer exists (UNKNOWN), or every result URL answered that it expired:
 * the task's 24 h retention passed.
 */
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
  'SecretUnavailableError',
  ...FUNCTION_CRASH_ERROR_NAMES,
] as const;

/**
 * Retryable errors raised before any request is sent, so before DashScope could create a task:
 * retrying them is safe even for Submit.
 */
export const BEFORE_REQUEST_ERROR_NAMES = ['SecretUnavailableError'] as const;

/** Error names that end the generation at once. */
export const PERMANENT_ERROR_NAMES = [
  'InvalidRequestError',
  'ContentPolicyError',
  'DashScopeAuthError',
  'QuotaExhaustedError',
  'DashScopeRejectedError',
  'NoImagesPersistedError',
  'TaskExpiredError',
  'SecretAccessError',
  'DownloadStalledError',
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
  /** The dispatcher's: the generation waited in the admission queue past `maxQueueSeconds`. */
  queueTimeExceeded: 'QueueTimeExceeded',
} as const;

/**
 * The local engine's: an execution whose process ended and that no later engine could take up
 * again (nothing recorded where it stood). On AWS, Step Functions keeps executions; it never occurs.
 */
export const EXECUTION_INTERRUPTED = 'ExecutionInterrupted';

/**
 * The stable type of each error name a failed execution can carry: the Lambdas' named errors,
 * the workflow's own Fail states, and Step Functions' timeout. Anything else is `internal_error`.
 */
export const ERROR_TYPE_BY_NAME: Readonly<Record<string, ErrorType>> = {
  DashScopeThrottledError: 'rate_limited',
  DashScopeUnavailableError: 'upstream_error',
  DashScopeTimeoutError: 'timeout',
  StorageUnavailableError: 'storage_error',
  SecretUnavailableError: 'upstream_error',
  SecretAccessError: 'auth',
  DownloadStalledError: 'timeout',
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
  [WORKFLOW_ERROR.queueTimeExceeded]: 'timeout',
  'States.Timeout': 'timeout',
  [EXECUTION_INTERRUPTED]: 'interrupted',
};

/** The types an upstream answer (DashScope, or the host of its results) can be classified as. */
export type UpstreamErrorType = Extract<
  ErrorType,
  | 'invalid_request'
  | 'content_policy'
  | 'auth'
  | 'quota_exhausted'
  | 'rate_limited'
  | 'upstream_error'
  | 'expired'
>;

const UPSTREAM_ERROR_TYPES: ReadonlySet<string> = new Set<UpstreamErrorType>([
  'invalid_request',
  'content_policy',
  'auth',
  'quota_exhausted',
  'rate_limited',
  'upstream_error',
  'expired',
]);

/** Whether `type` is one an upstream failure can have (see {@link upstreamErrorType}). */
export function isUpstreamErrorType(type: string): type is UpstreamErrorType {
  return UPSTREAM_ERROR_TYPES.has(type);
}

/** One failure as an upstream reported it: an error answer, a FAILED task, or a failed image. */
export interface UpstreamFailure {
  /** DashScope's code (`DataInspectionFailed`), or the result host's (OSS's `AccessDenied`). */
  readonly code?: string;
  readonly message?: string;
  /** The HTTP status that carried it; absent for a task's or an image's own error. */
  readonly httpStatus?: number;
  /**
   * Who answered: DashScope's API, or the host serving result images. Only a bare status, with no
   * code we know, is read differently: a result host's 403, 404 or 410 says the pre-signed URL
   * expired or its image is gone (a late download answers 403, as DashScope documents).
   * @default 'api'
   */
  readonly from?: 'api' | 'result-host';
}

/** DashScope's documented codes (shared/reference/dashscope-api.md) and OSS's, by cause. */
const TYPE_BY_CODE: Readonly<Record<string, UpstreamErrorType>> = {
  DataInspectionFailed: 'content_policy',
  Arrearage: 'quota_exhausted',
  'Throttling.AllocationQuota': 'quota_exhausted',
  Throttling: 'rate_limited',
  LimitRequests: 'rate_limited',
  InvalidApiKey: 'auth',
  AccessDenied: 'auth',
  WorkSpaceNotFound: 'auth',
  InvalidParameter: 'invalid_request',
  InvalidURL: 'invalid_request',
  ModelNotFound: 'invalid_request',
  BadRequest: 'invalid_request',
  InternalError: 'upstream_error',
  SystemError: 'upstream_error',
  ModelServiceFailed: 'upstream_error',
  ModelUnavailable: 'upstream_error',
  RequestTimeOut: 'upstream_error',
  UnsupportedOperation: 'upstream_error',
  // OSS: the result object no longer exists.
  NoSuchKey: 'expired',
};

/**
 * The one classification of an upstream failure, used wherever one is met: a submit's or a
 * query's error answer, a task that ended FAILED, an image of `results[]` that failed, a refused
 * result download. So the same cause has the same type in the API, the CLI, the events, the
 * webhooks and the manifest.
 *
 * The code decides, including its family (`Throttling.RateQuota` is a `Throttling`,
 * `Model.AccessDenied` an `AccessDenied`); OSS's `AccessDenied` for "Request has expired." is
 * `expired`. With no code we know, the HTTP status decides; with neither, `upstream_error`.
 */
export function upstreamErrorType(failure: UpstreamFailure): UpstreamErrorType {
  const code = failure.code ?? '';
  const family = /^(?:Model\.|Workspace\.)?([A-Za-z]+)/.exec(code)?.[1] ?? '';
  if (family === 'AccessDenied' && /\bexpired\b/i.test(failure.message ?? '')) return 'expired';
  const known = TYPE_BY_CODE[code] ?? TYPE_BY_CODE[family];
  if (known) return known;
  const status = failure.httpStatus;
  if (status === undefined) return 'upstream_error';
  if (failure.from === 'result-host' && [403, 404, 410].includes(status)) return 'expired';
  if (status === 429) return 'rate_limited';
  if (status === 401 || status === 403) return 'auth';
  if (status === 400 || status === 404) return 'invalid_request';
  return 'upstream_error';
}

/** Whether an HTTP status says "try again later": 408, 429 and every 5xx. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/**
 * The named error of an upstream failure of `type`. `retryable` picks between the retryable and
 * the permanent error of the same type where both exist (`upstream_error`, `rate_limited`).
 */
export function errorOfType(
  type: UpstreamErrorType,
  message: string,
  details: ErrorDetails & { readonly retryable: boolean },
): GenerationError {
  switch (type) {
    case 'content_policy':
      return new ContentPolicyError(message, details);
    case 'quota_exhausted':
      return new QuotaExhaustedError(message, details);
    case 'auth':
      return new DashScopeAuthError(message, details);
    case 'invalid_request':
      return new InvalidRequestError(message, details);
    case 'expired':
      return new TaskExpiredError(message, details);
    case 'rate_limited':
      return new DashScopeThrottledError(message, details);
    case 'upstream_error':
      return details.retryable
        ? new DashScopeUnavailableError(message, details)
        : new DashScopeRejectedError(message, details);
  }
}

/** Turns any thrown value into a message that is safe to log: no stack, no secrets we know of. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}
