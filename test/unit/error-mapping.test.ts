import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { copyImage, ImageCopyError } from '../../functions/persist/copy-image.js';
import { persistGeneration } from '../../functions/persist/persist.js';
import { pollGeneration } from '../../functions/poll/poll.js';
import { createDashScopeClient, type DashScopeClient } from '../../functions/shared/dashscope/client.js';
import type { TaskResponse } from '../../functions/shared/dashscope/schemas.js';
import {
  ERROR_TYPE_BY_NAME,
  type ErrorType,
  GenerationError,
  WORKFLOW_ERROR,
} from '../../functions/shared/errors.js';
import { failureView } from '../../functions/shared/failure.js';
import { generationRequestSchema } from '../../functions/shared/generation-request.js';
import { silentLogger } from '../../functions/shared/logger.js';
import type { TaskInput } from '../../functions/shared/workflow-state.js';

/**
 * Every DashScope error code of the API reference (shared/reference/dashscope-api.md, "Errors"),
 * with the HTTP status it comes with and the one type it has wherever it is met: a submit's
 * answer, a task that ends FAILED with it, an image of `results[]` that failed with it, and a
 * result download refused with it. OSS's expired URL is the one message that changes a code's type.
 */
const ROWS: ReadonlyArray<readonly [status: number, code: string, type: ErrorType, message?: string]> = [
  [400, 'InvalidParameter', 'invalid_request'],
  [400, 'DataInspectionFailed', 'content_policy'],
  [400, 'BadRequest.EmptyPrompt', 'invalid_request'],
  [400, 'InvalidURL', 'invalid_request'],
  [400, 'Arrearage', 'quota_exhausted'],
  [400, 'UnsupportedOperation', 'upstream_error'],
  [401, 'InvalidApiKey', 'auth'],
  [403, 'AccessDenied', 'auth'],
  [403, 'AccessDenied.Unpurchased', 'auth'],
  [403, 'Model.AccessDenied', 'auth'],
  [403, 'Workspace.AccessDenied', 'auth'],
  [404, 'ModelNotFound', 'invalid_request'],
  [404, 'WorkSpaceNotFound', 'auth'],
  [408, 'RequestTimeOut', 'upstream_error'],
  [429, 'Throttling', 'rate_limited'],
  [429, 'Throttling.RateQuota', 'rate_limited'],
  [429, 'Throttling.BurstRate', 'rate_limited'],
  [429, 'Throttling.Concurrency', 'rate_limited'],
  [429, 'LimitRequests', 'rate_limited'],
  [429, 'Throttling.AllocationQuota', 'quota_exhausted', 'Free allocated quota exceeded.'],
  [500, 'InternalError', 'upstream_error'],
  [500, 'InternalError.Algo', 'upstream_error'],
  [500, 'InternalError.Timeout', 'upstream_error'],
  [500, 'SystemError', 'upstream_error'],
  [500, 'ModelServiceFailed', 'upstream_error'],
  [503, 'ModelUnavailable', 'upstream_error'],
  [403, 'AccessDenied', 'expired', 'Request has expired.'],
];

const TASK_ID = 'task-error-mapping';
const s3Mock = mockClient(S3Client);
afterEach(() => s3Mock.reset());

function taskInput(): TaskInput {
  return {
    id: 'gen-error-mapping',
    request: generationRequestSchema.parse({ prompt: 'a lighthouse', n: 1, seed: 7 }),
    task: {
      taskId: TASK_ID,
      seed: 7,
      submitRequestId: 'req-submit',
      submittedAt: '2026-01-01T00:00:00.000Z',
      deadline: '2026-01-01T01:00:00.000Z',
      status: 'running',
      dashscopeStatus: 'RUNNING',
      times: {},
      pollCount: 1,
      nextPollSeconds: 1,
      deadlineExceeded: false,
    },
  };
}

function dashscopeAnswering(output: Partial<TaskResponse['output']>): DashScopeClient {
  const unused = async (): Promise<never> => {
    throw new Error('not used');
  };
  return {
    submit: unused,
    cancel: unused,
    listTasks: unused,
    getTask: async () => ({
      request_id: 'req-query',
      output: { task_id: TASK_ID, task_status: 'SUCCEEDED', ...output },
    }),
  };
}

const answer = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });

/** What the API, the events and the webhooks show for a Lambda error (its name and AWS's cause). */
const viewOfLambdaError = (error: Error) =>
  failureView(error.name, JSON.stringify({ errorType: error.name, errorMessage: error.message }), undefined);

const CODES = ROWS.map(([status, code, type, message]) => ({
  status,
  code,
  type,
  message: message ?? `${code} happened`,
}));

describe.each(CODES)('HTTP $status $code ($message)', ({ status, code, type, message }) => {
  it(`is ${type} when a submit is answered with it, in the error and in what clients see`, async () => {
    // Prepare
    const client = createDashScopeClient({
      baseUrl: 'https://dashscope.example/api/v1',
      apiKey: async () => 'sk-test',
      fetch: async () => answer(status, { code, message, request_id: 'req-1' }),
    });

    // Act
    const error = await client
      .submit({
        model: 'stable-diffusion-3.5-large',
        input: { prompt: 'p' },
        parameters: { size: '512*512', n: 1, steps: 4, cfg: 4.5, shift: 3 },
      })
      .catch((caught: unknown) => caught);

    // Assess
    expect(error).toBeInstanceOf(GenerationError);
    expect((error as GenerationError).type).toBe(type);
    expect(viewOfLambdaError(error as Error)).toMatchObject({ type, upstreamCode: code });
  });

  it(`is ${type} when the task ends FAILED with it, with or without the task state at hand`, async () => {
    // Act
    const state = await pollGeneration(taskInput(), {
      dashscope: dashscopeAnswering({ task_status: 'FAILED', code, message }),
      clock: { now: () => Date.parse('2026-01-01T00:01:00.000Z') },
      logger: silentLogger,
    });

    // Assess
    expect(state.error?.type).toBe(type);
    const cause = state.error?.message;
    expect(failureView(WORKFLOW_ERROR.taskFailed, cause, state)).toMatchObject({ type, upstreamCode: code });
    expect(failureView(WORKFLOW_ERROR.taskFailed, cause, undefined)).toMatchObject({
      type,
      upstreamCode: code,
    });
  });

  it(`is ${type} when the only image of a succeeded task failed with it`, async () => {
    // Prepare
    s3Mock.on(GetObjectCommand).rejects(Object.assign(new Error('missing'), { name: 'NoSuchKey' }));
    s3Mock.on(ListObjectsV2Command).resolves({});

    // Act
    const error = await persistGeneration(taskInput(), {
      dashscope: dashscopeAnswering({ results: [{ code, message }] }),
      s3: new S3Client({ region: 'us-east-1' }),
      bucket: 'images',
      fetch: globalThis.fetch,
      clock: { now: () => 0 },
      logger: silentLogger,
      resultUrls: { hosts: [] },
      maxImageBytes: 1000,
      downloadTimeoutMs: 1000,
    }).catch((caught: unknown) => caught);

    // Assess
    expect((error as GenerationError).type).toBe(type);
    expect(ERROR_TYPE_BY_NAME[(error as Error).name]).toBe(type);
  });

  it(`is ${type} when a result download is refused with it`, async () => {
    // Act
    const error = await copyImage(
      new URL('https://result.example/x.png'),
      { s3: new S3Client({ region: 'us-east-1' }), bucket: 'images', keyStem: 'x', metadata: {} },
      { maxBytes: 1000, timeoutMs: 1000, fetch: async () => answer(status, { code, message }) },
    ).catch((caught: unknown) => caught);

    // Assess
    expect(error).toBeInstanceOf(ImageCopyError);
    expect(error).toMatchObject({ type, upstreamCode: code });
  });
});
