import { describe, expect, it } from 'vitest';
import {
  PERMANENT_ERROR_NAMES,
  RETRYABLE_ERROR_NAMES,
  SecretAccessError,
  SecretUnavailableError,
} from '../../functions/shared/errors.js';
import { secretProvider } from '../../functions/shared/secret.js';

const SECRET_ID = 'sd35/dashscope-api-key';

/** An error as the AWS SDK throws it: a name, and the HTTP status when there was an answer. */
const sdkError = (name: string, httpStatusCode?: number) =>
  Object.assign(new Error(`${name} from Secrets Manager`), {
    name,
    ...(httpStatusCode === undefined ? {} : { $metadata: { httpStatusCode } }),
  });

function failingRead(error: unknown) {
  const provider = secretProvider('DashScope API key', SECRET_ID, undefined, {
    readSecret: async () => {
      throw error;
    },
  });
  if (!provider) throw new Error('no provider');
  return provider().catch((caught: unknown) => caught);
}

describe('secretProvider: a failed read is named, and retryable only when transient', () => {
  it.each([
    ['throttling', sdkError('ThrottlingException', 400)],
    ['a 429', sdkError('TooManyRequestsException', 429)],
    ['an internal service error', sdkError('InternalServiceError', 500)],
    ['a 503', sdkError('ServiceUnavailable', 503)],
    ['a network failure (no answer)', Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })],
    ['a timeout (no answer)', sdkError('TimeoutError')],
  ])('is a retryable SecretUnavailableError on %s', async (_, cause) => {
    // Act
    const error = await failingRead(cause);

    // Assess
    expect(error).toBeInstanceOf(SecretUnavailableError);
    expect(error).toMatchObject({ name: 'SecretUnavailableError', retryable: true, cause });
    expect((error as Error).message).toContain(SECRET_ID);
  });

  it.each([
    ['a missing secret', sdkError('ResourceNotFoundException', 400)],
    ['denied access', sdkError('AccessDeniedException', 400)],
    ['a key it may not decrypt with', sdkError('DecryptionFailure', 400)],
    ['a secret scheduled for deletion', sdkError('InvalidRequestException', 400)],
    ['another 4xx', sdkError('SomethingNew', 403)],
  ])('is a permanent SecretAccessError on %s', async (_, cause) => {
    // Act
    const error = await failingRead(cause);

    // Assess
    expect(error).toBeInstanceOf(SecretAccessError);
    expect(error).toMatchObject({ name: 'SecretAccessError', type: 'auth', retryable: false });
  });

  it('is a SecretAccessError when the secret holds no value', async () => {
    // Prepare
    const provider = secretProvider('DashScope API key', SECRET_ID, undefined, {
      readSecret: async () => ' ',
    });

    // Act
    const error = await provider?.().catch((caught: unknown) => caught);

    // Assess
    expect(error).toBeInstanceOf(SecretAccessError);
  });

  it('gives the workflow the transient one to retry and the permanent one to stop on', () => {
    expect(RETRYABLE_ERROR_NAMES).toContain('SecretUnavailableError');
    expect(PERMANENT_ERROR_NAMES).toContain('SecretAccessError');
  });
});
