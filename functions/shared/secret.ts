import { readSecretString } from './aws/secrets-manager.js';
import { describeError, SecretAccessError, SecretUnavailableError } from './errors.js';

/** How long a container keeps a secret before reading it again (lets a rotation take effect). */
export const SECRET_MAX_AGE_SECONDS = 300;

/** Reads a secret's string value; undefined when the secret holds binary data instead. */
export type SecretReader = (secretId: string) => Promise<string | undefined>;

export interface SecretProviderDeps {
  /** @default GetSecretValue with the Lambda runtime's Secrets Manager client */
  readonly readSecret?: SecretReader;
  /** @default Date.now */
  readonly now?: () => number;
}

/**
 * A function returning a secret string: from Secrets Manager when an id is given (cached per
 * container for 5 minutes, so a rotation takes effect), else the local value; undefined when
 * neither is set. Errors name the secret id and `what`, never the value.
 *
 * The returned function throws {@link SecretUnavailableError} (retryable) when the read failed
 * for a transient reason, and {@link SecretAccessError} (permanent) when the secret is missing,
 * not readable by this function, or holds no usable value; see {@link secretReadError}.
 */
export function secretProvider(
  what: string,
  secretId: string | undefined,
  localValue: string | undefined,
  deps: SecretProviderDeps = {},
): (() => Promise<string>) | undefined {
  if (secretId) {
    const read = cached(
      () => (deps.readSecret ?? readSecretString)(secretId),
      SECRET_MAX_AGE_SECONDS * 1000,
      deps.now ?? Date.now,
    );
    return async () => {
      let value: string | undefined;
      try {
        value = await read();
      } catch (error) {
        throw secretReadError(`Could not read secret ${secretId}`, error);
      }
      if (typeof value !== 'string' || value.trim() === '') {
        throw new SecretAccessError(`Secret ${secretId} holds no ${what} (expected a plain string value)`);
      }
      return value.trim();
    };
  }
  if (localValue) return async () => localValue;
  return undefined;
}

/**
 * Secrets Manager's answers that no retry changes: the secret does not exist (or is scheduled for
 * deletion), this function may not read or decrypt it, or the request is malformed.
 */
const PERMANENT_SECRET_ERRORS: ReadonlySet<string> = new Set([
  'ResourceNotFoundException',
  'AccessDeniedException',
  'DecryptionFailure',
  'InvalidRequestException',
  'InvalidParameterException',
  'UnrecognizedClientException',
]);

/**
 * Names a failed secret read. Permanent ({@link SecretAccessError}): the answers above, and any
 * other 4xx but throttling. Transient ({@link SecretUnavailableError}): throttling, a 5xx, and a
 * failure with no answer at all (the network, a timeout). The cause is kept; its message, which
 * Secrets Manager never fills with the value, is appended.
 */
export function secretReadError(what: string, error: unknown): SecretAccessError | SecretUnavailableError {
  const sdk = error as { name?: string; $metadata?: { httpStatusCode?: number } } | undefined;
  const name = sdk?.name ?? '';
  const status = sdk?.$metadata?.httpStatusCode;
  const throttled = status === 429 || /Throttling|TooManyRequests/.test(name);
  const message = `${what}: ${describeError(error)}`;
  const permanent =
    PERMANENT_SECRET_ERRORS.has(name) ||
    (status !== undefined && status >= 400 && status < 500 && !throttled);
  return permanent
    ? new SecretAccessError(message, { cause: error, httpStatus: status })
    : new SecretUnavailableError(message, { cause: error, httpStatus: status });
}

/** `read`, remembered for `maxAgeMs`; concurrent callers share one read, and a failed read is not kept. */
function cached<T>(read: () => Promise<T>, maxAgeMs: number, now: () => number): () => Promise<T> {
  let entry: { value: Promise<T>; until: number } | undefined;
  return () => {
    const time = now();
    if (!entry || time >= entry.until) {
      const value = read();
      const current = { value, until: time + maxAgeMs };
      entry = current;
      value.catch(() => {
        if (entry === current) entry = undefined;
      });
    }
    return entry.value;
  };
}
