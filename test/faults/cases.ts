import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { expect } from 'vitest';
import { WORKFLOW_ERROR } from '../../functions/shared/errors.js';
import { DETAIL_TYPE } from '../../functions/shared/events.js';
import { SECRET_MAX_AGE_SECONDS } from '../../functions/shared/secret.js';
import type { TaskState } from '../../functions/shared/workflow-state.js';
import { STATE } from '../../infra/constructs/workflow.js';
import type { DownloadFault } from '../../local/dashscope-emulator/types.js';
import { SUITE_CONFIG } from './harness.js';
import type { CaseContext, Observation } from './run-case.js';

/** What a case must end in; the matrix row is written from what it did end in. */
export interface Expected {
  readonly status: 'succeeded' | 'failed';
  /** The execution's error name, when it failed. */
  readonly error?: string;
  /** The stable error type and upstream code a client is told, when it failed. */
  readonly type?: string;
  readonly upstreamCode?: string;
  /** The manifest's status, when it succeeded. */
  readonly manifest?: 'complete' | 'partial';
  /** Indexes of the images stored (with a manifest when the generation succeeded). */
  readonly stored: readonly number[];
  /** Images listed under `failed` in the manifest, in order. */
  readonly failedImages?: ReadonlyArray<{ index: number; type: string; code?: string }>;
  /** Tasks DashScope created, submit calls, result downloads and cancel calls it received. */
  readonly tasks: number;
  readonly submits: number;
  readonly downloads: number;
  readonly cancels?: number;
  /** Lambda failures by `"<state> <error name>"`, retried or caught: exactly these, no others. */
  readonly lambdaErrors?: Readonly<Record<string, number>>;
}

/** One row of the fault matrix. */
export interface FaultCase {
  readonly where: 'submit' | 'poll' | 'results' | 'storage' | 'notify';
  /** The fault, as the docs name it. */
  readonly fault: string;
  /** Whether the request asks for a webhook, to the suite's receiver. @default false */
  readonly webhook?: boolean;
  /** Images requested. @default 2 */
  readonly n?: number;
  /** Scripts the fault before the execution starts. */
  readonly arrange?: (context: CaseContext) => void | Promise<void>;
  /** Sees every task state Submit and Poll return, to act at the right moment. */
  readonly onTaskState?: (context: CaseContext, state: TaskState) => void;
  readonly expected: Expected;
  /** Checks beyond the common ones. */
  readonly check?: (context: CaseContext, observation: Observation) => void | Promise<void>;
}

const throttled = { status: 429, code: 'Throttling.RateQuota' };
/** A result host that announces the whole image, then sends 100 bytes a second. */
const trickle = { kind: 'trickle', bytesPerSecond: 100 } as const;

/** An error as the AWS SDK throws it for a Secrets Manager refusal. */
function secretsManagerError(name: string, message: string): Error {
  return Object.assign(new Error(message), { name, $metadata: { httpStatusCode: 400 } });
}

/**
 * Once the task succeeded, Persist's cached key ages out, so its next reads reach Secrets
 * Manager: the first `times` of them fail with `error()`.
 */
function failPersistSecretReads(error: () => Error, times = Number.POSITIVE_INFINITY) {
  return ({ suite }: CaseContext, state: TaskState) => {
    if (state.status !== 'succeeded') return;
    suite.clock.advance((SECRET_MAX_AGE_SECONDS + 1) * 1000);
    let failures = times;
    suite.hooks.beforeSecretRead = () => {
      if (failures-- > 0) throw error();
    };
  };
}
const expiredUrl: DownloadFault = { status: 403, code: 'AccessDenied', message: 'Request has expired.' };
const html = '<!DOCTYPE html><html><body>Sign in to continue</body></html>';
/** Enough ×1.5 over the cap to be refused, small enough to stay quick. */
const oversizeBytes = Math.round(SUITE_CONFIG.maxImageBytes * 1.5);

/** Every task DashScope still knows, oldest first, as it sees them now. */
const tasksSeen = (context: CaseContext) => context.suite.emulator.control.tasks();

/** A task of another client of the same account that holds the single runner for ever. */
async function blockTheRunner(context: CaseContext): Promise<void> {
  const { emulator } = context.suite;
  emulator.control.planNextTask({ durationMs: Number.POSITIVE_INFINITY });
  const response = await fetch(`${emulator.url}/services/aigc/text2image/image-synthesis`, {
    method: 'POST',
    headers: {
      Authorization: `Bearer ${emulator.apiKey}`,
      'X-DashScope-Async': 'enable',
      'Content-Type': 'application/json',
    },
    body: JSON.stringify({
      model: 'stable-diffusion-3.5-large',
      input: { prompt: `another client's long job (${context.id})` },
      parameters: { size: '1024*1024', n: 1 },
    }),
  });
  expect(response.status).toBe(200);
}

/** The error Step Functions reports when a Lambda dies mid-run (out of memory, killed). */
function lambdaCrash(): Error {
  const error = new Error('RequestId: 00000000-fault-case Error: Runtime exited with error: signal: killed');
  error.name = 'Lambda.Unknown';
  return error;
}

/**
 * A Lambda concurrency throttle on the first `times` invocations of `state`: the function never
 * runs, and Step Functions reports Lambda's TooManyRequestsException.
 */
function throttleLambda(state: string, times: number) {
  return ({ suite }: CaseContext) => {
    let refused = 0;
    suite.hooks.interceptTask = (name, invoke) => {
      if (name !== state || refused >= times) return invoke();
      refused += 1;
      const error = new Error('Rate Exceeded.');
      error.name = 'Lambda.TooManyRequestsException';
      return Promise.reject(error);
    };
  };
}

const isImagePut = (command: object, index: number) =>
  command instanceof PutObjectCommand && (command.input.Key ?? '').endsWith(`/${index}.png`);

/**
 * The fault matrix: issue 6's rows, plus a few that show where a bound stops a retry. Each case
 * runs one generation of `n` 512×512 images through the synthesized workflow.
 */
export const CASES: readonly FaultCase[] = [
  // Submit: DashScope's answer decides whether a task exists.
  {
    where: 'submit',
    fault: '429 burst: 5 × Throttling.RateQuota',
    arrange: ({ suite }) => suite.emulator.control.injectFault('submit', throttled, 5),
    expected: {
      status: 'succeeded',
      manifest: 'complete',
      stored: [0, 1],
      tasks: 1,
      submits: 6,
      downloads: 2,
      lambdaErrors: { 'Submit DashScopeThrottledError': 5 },
    },
  },
  {
    where: 'submit',
    fault: '429 Throttling.AllocationQuota (free quota spent)',
    arrange: ({ suite }) =>
      suite.emulator.control.injectFault('submit', { status: 429, code: 'Throttling.AllocationQuota' }),
    expected: {
      status: 'failed',
      error: 'QuotaExhaustedError',
      type: 'quota_exhausted',
      upstreamCode: 'Throttling.AllocationQuota',
      stored: [],
      tasks: 0,
      submits: 1,
      downloads: 0,
      lambdaErrors: { 'Submit QuotaExhaustedError': 1 },
    },
  },
  {
    where: 'submit',
    fault: '500 InternalError × 2, then 503 ModelUnavailable',
    arrange: ({ suite }) => {
      suite.emulator.control.injectFault('submit', { status: 500, code: 'InternalError' }, 2);
      suite.emulator.control.injectFault('submit', { status: 503, code: 'ModelUnavailable' });
    },
    expected: {
      status: 'succeeded',
      manifest: 'complete',
      stored: [0, 1],
      tasks: 1,
      submits: 4,
      downloads: 2,
      lambdaErrors: { 'Submit DashScopeUnavailableError': 3 },
    },
  },
  {
    where: 'submit',
    fault: '503 ModelUnavailable on every attempt',
    arrange: ({ suite }) =>
      suite.emulator.control.injectFault('submit', { status: 503, code: 'ModelUnavailable' }, 20),
    expected: {
      status: 'failed',
      error: 'DashScopeUnavailableError',
      type: 'upstream_error',
      upstreamCode: 'ModelUnavailable',
      stored: [],
      tasks: 0,
      submits: 7,
      downloads: 0,
      lambdaErrors: { 'Submit DashScopeUnavailableError': 7 },
    },
  },
  {
    where: 'submit',
    fault: 'connection reset before DashScope handles it',
    arrange: ({ suite }) => suite.emulator.control.injectFault('submit', { kind: 'reset' }),
    expected: {
      status: 'succeeded',
      manifest: 'complete',
      stored: [0, 1],
      tasks: 1,
      submits: 2,
      downloads: 2,
      lambdaErrors: { 'Submit DashScopeTimeoutError': 1 },
    },
  },
  {
    where: 'submit',
    fault: 'response lost after the task was created',
    arrange: ({ suite }) => suite.emulator.control.injectFault('submit', { kind: 'lost-response' }),
    expected: {
      status: 'succeeded',
      manifest: 'complete',
      stored: [0, 1],
      tasks: 1,
      submits: 1,
      downloads: 2,
      lambdaErrors: { 'Submit DashScopeTimeoutError': 1 },
    },
    check: (context, { output }) => {
      // The retry found the lost answer's task through the list endpoint and adopted it.
      const [adopted] = tasksSeen(context);
      expect(adopted?.taskId).toBe(output?.task.taskId);
    },
  },
  {
    where: 'submit',
    fault: 'response lost, and the list endpoint down (no orphan can be found)',
    arrange: ({ suite }) => {
      suite.emulator.control.injectFault('submit', { kind: 'lost-response' });
      // Once: the orphan search's listing fails; the poll policy's later listings work.
      suite.emulator.control.injectFault('list', { status: 500, code: 'InternalError' });
    },
    expected: {
      status: 'succeeded',
      manifest: 'complete',
      stored: [0, 1],
      tasks: 2,
      submits: 2,
      downloads: 2,
      lambdaErrors: { 'Submit DashScopeTimeoutError': 1 },
    },
    check: (context, { output }) => {
      // Without the listing, the retry submits again: the first task runs unobserved (and billed).
      const [orphan, persisted] = tasksSeen(context);
      expect(persisted?.taskId).toBe(output?.task.taskId);
      expect(orphan?.taskId).not.toBe(output?.task.taskId);
    },
  },
  {
    where: 'submit',
    fault: 'response lost twice, and the list endpoint down',
    arrange: ({ suite }) => {
      suite.emulator.control.injectFault('submit', { kind: 'lost-response' }, 2);
      // Once: the orphan search's listing fails; the poll policy's later listings work.
      suite.emulator.control.injectFault('list', { status: 500, code: 'InternalError' });
    },
    expected: {
      status: 'failed',
      error: 'DashScopeTimeoutError',
      type: 'timeout',
      stored: [],
      tasks: 2,
      submits: 2,
      downloads: 0,
      lambdaErrors: { 'Submit DashScopeTimeoutError': 2 },
    },
  },
  {
    where: 'submit',
    fault: `slow answer: ${SUITE_CONFIG.submitTimeoutMs + 1000} ms, past the ${SUITE_CONFIG.submitTimeoutMs} ms client timeout`,
    arrange: ({ suite }) =>
      suite.emulator.control.injectFault('submit', {
        kind: 'slow',
        delayMs: SUITE_CONFIG.submitTimeoutMs + 1000,
      }),
    expected: {
      status: 'succeeded',
      manifest: 'complete',
      stored: [0, 1],
      tasks: 1,
      submits: 1,
      downloads: 2,
      lambdaErrors: { 'Submit DashScopeTimeoutError': 1 },
    },
    check: (context, { output }) => {
      // The slow answer's task was created: the retry adopted it instead of submitting again.
      expect(tasksSeen(context).map((task) => task.taskId)).toEqual([output?.task.taskId]);
    },
  },
  {
    where: 'submit',
    fault: '400 InvalidParameter',
    arrange: ({ suite }) =>
      suite.emulator.control.injectFault('submit', {
        status: 400,
        code: 'InvalidParameter',
        message: 'The size is not match the allowed size.',
      }),
    expected: {
      status: 'failed',
      error: 'InvalidRequestError',
      type: 'invalid_request',
      upstreamCode: 'InvalidParameter',
      stored: [],
      tasks: 0,
      submits: 1,
      downloads: 0,
      lambdaErrors: { 'Submit InvalidRequestError': 1 },
    },
  },
  {
    where: 'submit',
    fault: '400 DataInspectionFailed',
    arrange: ({ suite }) =>
      suite.emulator.control.injectFault('submit', {
        status: 400,
        code: 'DataInspectionFailed',
        message: 'Input data may contain inappropriate content.',
      }),
    expected: {
      status: 'failed',
      error: 'ContentPolicyError',
      type: 'content_policy',
      upstreamCode: 'DataInspectionFailed',
      stored: [],
      tasks: 0,
      submits: 1,
      downloads: 0,
      lambdaErrors: { 'Submit ContentPolicyError': 1 },
    },
  },
  {
    where: 'submit',
    fault: '401 InvalidApiKey',
    arrange: ({ suite }) =>
      suite.emulator.control.injectFault('submit', { status: 401, code: 'InvalidApiKey' }),
    expected: {
      status: 'failed',
      error: 'DashScopeAuthError',
      type: 'auth',
      upstreamCode: 'InvalidApiKey',
      stored: [],
      tasks: 0,
      submits: 1,
      downloads: 0,
      lambdaErrors: { 'Submit DashScopeAuthError': 1 },
    },
  },

  // Poll: the task exists; only our view of it is disturbed, or the task itself goes wrong.
  {
    where: 'poll',
    fault: '429 Throttling.RateQuota × 3',
    arrange: ({ suite }) => suite.emulator.control.injectFault('get', throttled, 3),
    expected: {
      status: 'succeeded',
      manifest: 'complete',
      stored: [0, 1],
      tasks: 1,
      submits: 1,
      downloads: 2,
      lambdaErrors: { 'Poll DashScopeThrottledError': 3 },
    },
  },
  {
    where: 'poll',
    fault: '500 InternalError, then 503 ModelUnavailable',
    arrange: ({ suite }) => {
      suite.emulator.control.injectFault('get', { status: 500, code: 'InternalError' });
      suite.emulator.control.injectFault('get', { status: 503, code: 'ModelUnavailable' });
    },
    expected: {
      status: 'succeeded',
      manifest: 'complete',
      stored: [0, 1],
      tasks: 1,
      submits: 1,
      downloads: 2,
      lambdaErrors: { 'Poll DashScopeUnavailableError': 2 },
    },
  },
  {
    where: 'poll',
    fault: 'connection reset × 2',
    arrange: ({ suite }) => suite.emulator.control.injectFault('get', { kind: 'reset' }, 2),
    expected: {
      status: 'succeeded',
      manifest: 'complete',
      stored: [0, 1],
      tasks: 1,
      submits: 1,
      downloads: 2,
      lambdaErrors: { 'Poll DashScopeTimeoutError': 2 },
    },
  },
  {
    where: 'poll',
    fault: 'Lambda throttles Poll × 3 (TooManyRequestsException, the function never ran)',
    arrange: throttleLambda(STATE.poll, 3),
    expected: {
      status: 'succeeded',
      manifest: 'complete',
      stored: [0, 1],
      tasks: 1,
      submits: 1,
      downloads: 2,
      lambdaErrors: { 'Poll Lambda.TooManyRequestsException': 3 },
    },
  },
  {
    where: 'poll',
    fault: `PENDING past the ${SUITE_CONFIG.deadlineSeconds} s deadline, behind another client's task`,
    arrange: blockTheRunner,
    expected: {
      status: 'failed',
      error: WORKFLOW_ERROR.deadlineExceeded,
      type: 'timeout',
      stored: [],
      tasks: 2,
      submits: 2,
      downloads: 0,
      cancels: 1,
    },
    check: (context, { failure }) => {
      const [blocker, ours] = tasksSeen(context);
      expect(ours?.status).toBe('CANCELED');
      expect(blocker?.status).toBe('RUNNING');
      expect(failure?.message).toContain('PENDING');
    },
  },
  {
    where: 'poll',
    fault: 'RUNNING for ever',
    arrange: ({ suite }) => suite.emulator.control.planNextTask({ durationMs: Number.POSITIVE_INFINITY }),
    expected: {
      status: 'failed',
      error: WORKFLOW_ERROR.deadlineExceeded,
      type: 'timeout',
      stored: [],
      tasks: 1,
      submits: 1,
      downloads: 0,
      cancels: 0,
    },
    check: (context, { failure }) => {
      // A RUNNING task cannot be cancelled at DashScope: no cancel is sent, the reason says why.
      expect(tasksSeen(context)[0]?.status).toBe('RUNNING');
      expect(failure?.message).toContain('RUNNING');
    },
  },
  {
    where: 'poll',
    fault: 'FAILED with InternalError.Algo',
    arrange: ({ suite }) =>
      suite.emulator.control.planNextTask({
        fail: { code: 'InternalError.Algo', message: 'An internal error occurred in the algorithm.' },
      }),
    expected: {
      status: 'failed',
      error: WORKFLOW_ERROR.taskFailed,
      type: 'upstream_error',
      upstreamCode: 'InternalError.Algo',
      stored: [],
      tasks: 1,
      submits: 1,
      downloads: 0,
    },
  },
  {
    where: 'poll',
    fault: 'FAILED with DataInspectionFailed (output moderation)',
    arrange: ({ suite }) =>
      suite.emulator.control.planNextTask({
        fail: { code: 'DataInspectionFailed', message: 'Output data may contain inappropriate content.' },
      }),
    expected: {
      status: 'failed',
      error: WORKFLOW_ERROR.taskFailed,
      type: 'content_policy',
      upstreamCode: 'DataInspectionFailed',
      stored: [],
      tasks: 1,
      submits: 1,
      downloads: 0,
    },
  },
  {
    where: 'poll',
    fault: 'CANCELED from outside while PENDING',
    arrange: blockTheRunner,
    onTaskState: ({ suite }, state) => {
      if (state.pollCount === 0) expect(suite.emulator.control.cancelTask(state.taskId)).toBe(true);
    },
    expected: {
      status: 'failed',
      error: WORKFLOW_ERROR.taskCanceled,
      type: 'canceled',
      stored: [],
      tasks: 2,
      submits: 2,
      downloads: 0,
      cancels: 0,
    },
  },
  {
    where: 'poll',
    fault: 'UNKNOWN in mid-flight (the task record is gone)',
    arrange: ({ suite }) => suite.emulator.control.planNextTask({ durationMs: 120_000 }),
    onTaskState: ({ suite }, state) => {
      if (state.status === 'running') suite.emulator.control.forgetTask(state.taskId);
    },
    expected: {
      status: 'failed',
      error: WORKFLOW_ERROR.taskExpired,
      type: 'expired',
      stored: [],
      tasks: 1,
      submits: 1,
      downloads: 0,
    },
  },

  // Results: the task succeeded; its images must reach S3 whole, or be listed as failed.
  {
    where: 'results',
    fault: 'partial failure: images 1 and 3 of 4 fail',
    n: 4,
    arrange: ({ suite }) => suite.emulator.control.planNextTask({ failImages: [1, 3] }),
    expected: {
      status: 'succeeded',
      manifest: 'partial',
      stored: [0, 2],
      failedImages: [
        { index: 1, type: 'upstream_error', code: 'InternalError.Timeout' },
        { index: 3, type: 'upstream_error', code: 'InternalError.Timeout' },
      ],
      tasks: 1,
      submits: 1,
      downloads: 2,
    },
  },
  {
    where: 'results',
    fault: 'URL answers 403 AccessDenied "Request has expired." (image 1)',
    arrange: ({ suite }) => suite.emulator.control.planNextTask({ downloadFaults: { 1: [expiredUrl] } }),
    expected: {
      status: 'succeeded',
      manifest: 'partial',
      stored: [0],
      failedImages: [{ index: 1, type: 'expired', code: 'AccessDenied' }],
      tasks: 1,
      submits: 1,
      downloads: 2,
    },
  },
  {
    where: 'results',
    fault: 'every URL answers 403 AccessDenied',
    arrange: ({ suite }) =>
      suite.emulator.control.planNextTask({ downloadFaults: { 0: [expiredUrl], 1: [expiredUrl] } }),
    expected: {
      status: 'failed',
      error: 'TaskExpiredError',
      type: 'expired',
      upstreamCode: 'AccessDenied',
      stored: [],
      tasks: 1,
      submits: 1,
      downloads: 2,
      lambdaErrors: { 'Persist TaskExpiredError': 1 },
    },
  },
  {
    where: 'results',
    fault: 'body truncated: connection reset mid-download, once (image 1)',
    arrange: ({ suite }) =>
      suite.emulator.control.planNextTask({ downloadFaults: { 1: [{ kind: 'truncate' }] } }),
    expected: {
      status: 'succeeded',
      manifest: 'complete',
      stored: [0, 1],
      tasks: 1,
      submits: 1,
      downloads: 3,
    },
  },
  {
    where: 'results',
    fault: 'connection reset before the answer, once (image 1)',
    arrange: ({ suite }) =>
      suite.emulator.control.planNextTask({ downloadFaults: { 1: [{ kind: 'reset' }] } }),
    expected: {
      status: 'succeeded',
      manifest: 'complete',
      stored: [0, 1],
      tasks: 1,
      submits: 1,
      downloads: 3,
    },
  },
  {
    where: 'results',
    fault: 'body truncated on every try (image 1)',
    arrange: ({ suite }) =>
      suite.emulator.control.planNextTask({
        downloadFaults: { 1: [{ kind: 'truncate' }, { kind: 'truncate' }, { kind: 'truncate' }] },
      }),
    expected: {
      status: 'succeeded',
      manifest: 'partial',
      stored: [0],
      failedImages: [{ index: 1, type: 'upstream_error' }],
      tasks: 1,
      submits: 1,
      downloads: 4,
    },
  },
  {
    where: 'results',
    fault: 'wrong content type: text/html (image 1)',
    arrange: ({ suite }) =>
      suite.emulator.control.planNextTask({
        downloadFaults: { 1: [{ kind: 'serve', contentType: 'text/html', body: html }] },
      }),
    expected: {
      status: 'succeeded',
      manifest: 'partial',
      stored: [0],
      failedImages: [{ index: 1, type: 'result_rejected' }],
      tasks: 1,
      submits: 1,
      downloads: 2,
    },
  },
  {
    where: 'results',
    fault: 'not an image: an HTML page served as image/png (image 1)',
    arrange: ({ suite }) =>
      suite.emulator.control.planNextTask({
        downloadFaults: { 1: [{ kind: 'serve', contentType: 'image/png', body: html }] },
      }),
    expected: {
      status: 'succeeded',
      manifest: 'partial',
      stored: [0],
      failedImages: [{ index: 1, type: 'result_rejected' }],
      tasks: 1,
      submits: 1,
      downloads: 2,
    },
  },
  {
    where: 'results',
    fault: `larger than the ${SUITE_CONFIG.maxImageBytes}-byte cap, Content-Length declared (image 1)`,
    arrange: ({ suite }) =>
      suite.emulator.control.planNextTask({
        downloadFaults: { 1: [{ kind: 'oversize', bytes: oversizeBytes }] },
      }),
    expected: {
      status: 'succeeded',
      manifest: 'partial',
      stored: [0],
      failedImages: [{ index: 1, type: 'result_rejected' }],
      tasks: 1,
      submits: 1,
      downloads: 2,
    },
  },
  {
    where: 'results',
    fault: `larger than the ${SUITE_CONFIG.maxImageBytes}-byte cap, streamed without a length (image 1)`,
    arrange: ({ suite }) =>
      suite.emulator.control.planNextTask({
        downloadFaults: { 1: [{ kind: 'oversize', bytes: oversizeBytes, declareLength: false }] },
      }),
    expected: {
      status: 'succeeded',
      manifest: 'partial',
      stored: [0],
      failedImages: [{ index: 1, type: 'result_rejected' }],
      tasks: 1,
      submits: 1,
      downloads: 2,
    },
  },
  {
    where: 'results',
    fault: 'result host not on the allow-list (image 1 on localhost)',
    arrange: ({ suite }) =>
      suite.emulator.control.planNextTask({
        resultOrigins: { 1: suite.emulator.origin.replace('127.0.0.1', 'localhost') },
      }),
    expected: {
      status: 'succeeded',
      manifest: 'partial',
      stored: [0],
      failedImages: [{ index: 1, type: 'result_rejected' }],
      tasks: 1,
      submits: 1,
      downloads: 1,
    },
  },
  {
    where: 'results',
    fault: `download trickles at ${trickle.bytesPerSecond} bytes/s on every try (image 1)`,
    arrange: ({ suite }) =>
      suite.emulator.control.planNextTask({ downloadFaults: { 1: [trickle, trickle, trickle] } }),
    expected: {
      status: 'succeeded',
      manifest: 'partial',
      stored: [0],
      failedImages: [{ index: 1, type: 'timeout' }],
      tasks: 1,
      submits: 1,
      downloads: 4,
    },
    check: (_, { manifest }) => {
      expect(manifest?.failed[0]?.error.message).toMatch(/^download stalled: /);
    },
  },
  {
    where: 'results',
    fault: `every download trickles at ${trickle.bytesPerSecond} bytes/s, on every try`,
    n: 1,
    arrange: ({ suite }) =>
      suite.emulator.control.planNextTask({ downloadFaults: { 0: [trickle, trickle, trickle] } }),
    expected: {
      status: 'failed',
      error: 'DownloadStalledError',
      type: 'timeout',
      stored: [],
      tasks: 1,
      submits: 1,
      downloads: 3,
      lambdaErrors: { 'Persist DownloadStalledError': 1 },
    },
  },
  {
    where: 'results',
    fault: 'short results: SUCCEEDED with 1 result for n = 2, no error entry, metrics count 2',
    arrange: ({ suite }) => suite.emulator.control.planNextTask({ omitResults: [1] }),
    expected: {
      status: 'succeeded',
      manifest: 'partial',
      stored: [0],
      failedImages: [{ index: 1, type: 'upstream_error' }],
      tasks: 1,
      submits: 1,
      downloads: 1,
    },
    check: (_, { manifest }) => {
      expect(manifest?.discrepancies).toEqual([
        'task_metrics say 2 of 2 succeeded; results hold 1 URL(s) for n = 2',
        'usage.image_count is 2; results hold 1 URL(s)',
      ]);
    },
  },
  {
    where: 'results',
    fault: 'short results: SUCCEEDED with no result at all for n = 2',
    arrange: ({ suite }) => suite.emulator.control.planNextTask({ omitResults: [0, 1] }),
    expected: {
      status: 'failed',
      error: 'DashScopeRejectedError',
      type: 'upstream_error',
      stored: [],
      tasks: 1,
      submits: 1,
      downloads: 0,
      lambdaErrors: { 'Persist DashScopeRejectedError': 1 },
    },
  },
  {
    where: 'results',
    fault: 'task query answers 503 once when Persist asks for fresh URLs',
    onTaskState: ({ suite }, state) => {
      if (state.status === 'succeeded') {
        suite.emulator.control.injectFault('get', { status: 503, code: 'ModelUnavailable' });
      }
    },
    expected: {
      status: 'succeeded',
      manifest: 'complete',
      stored: [0, 1],
      tasks: 1,
      submits: 1,
      downloads: 2,
      lambdaErrors: { 'Persist DashScopeUnavailableError': 1 },
    },
  },
  {
    where: 'results',
    fault: 'Lambda throttles Persist × 3 (TooManyRequestsException, the function never ran)',
    arrange: throttleLambda(STATE.persist, 3),
    expected: {
      status: 'succeeded',
      manifest: 'complete',
      stored: [0, 1],
      tasks: 1,
      submits: 1,
      downloads: 2,
      lambdaErrors: { 'Persist Lambda.TooManyRequestsException': 3 },
    },
  },
  {
    where: 'results',
    fault: 'results gone (UNKNOWN) before Persist copies them',
    onTaskState: ({ suite }, state) => {
      if (state.status === 'succeeded') suite.emulator.control.forgetTask(state.taskId);
    },
    expected: {
      status: 'failed',
      error: 'TaskExpiredError',
      type: 'expired',
      stored: [],
      tasks: 1,
      submits: 1,
      downloads: 0,
      lambdaErrors: { 'Persist TaskExpiredError': 1 },
    },
  },

  // Storage: S3 fails under Persist; its retry must complete with each image stored once.
  {
    where: 'storage',
    fault: 's3rver stopped while image 1 uploads, started again for the retry',
    arrange: ({ suite }) => {
      let stopped = false;
      suite.hooks.beforeS3Send = async (command) => {
        if (!stopped && isImagePut(command, 1)) {
          stopped = true;
          await suite.s3.stop();
        } else if (!suite.s3.up && command instanceof GetObjectCommand) {
          await suite.s3.start();
        }
      };
    },
    expected: {
      status: 'succeeded',
      manifest: 'complete',
      stored: [0, 1],
      tasks: 1,
      submits: 1,
      // Image 0 is reused from S3 by the retry, not downloaded again.
      downloads: 3,
      lambdaErrors: { 'Persist StorageUnavailableError': 1 },
    },
  },
  {
    where: 'storage',
    fault: 'Persist crashes (Lambda.Unknown) after 2 of 4 uploads, then its retry',
    n: 4,
    arrange: ({ suite }) => {
      let crash: ((error: Error) => void) | undefined;
      suite.hooks.interceptTask = (state, invoke) => {
        if (state !== STATE.persist || crash) return invoke();
        return new Promise((resolve, reject) => {
          crash = reject;
          invoke().then(resolve, reject);
        });
      };
      let crashed = false;
      suite.hooks.beforeS3Send = (command) => {
        if (crashed || !isImagePut(command, 2)) return;
        crashed = true;
        crash?.(lambdaCrash());
        // The process is gone: its upload of image 2 never reaches S3.
        throw new Error('the function was killed');
      };
    },
    expected: {
      status: 'succeeded',
      manifest: 'complete',
      stored: [0, 1, 2, 3],
      tasks: 1,
      submits: 1,
      // Images 0 and 1 are reused; image 2 was being downloaded when the function died.
      downloads: 5,
      lambdaErrors: { 'Persist Lambda.Unknown': 1 },
    },
  },
  {
    where: 'storage',
    fault: 'manifest write fails once (S3 InternalError)',
    arrange: ({ suite }) => {
      let failed = false;
      suite.hooks.beforeS3Send = (command) => {
        const key = command instanceof PutObjectCommand ? (command.input.Key ?? '') : '';
        if (failed || !key.endsWith('/manifest.json')) return;
        failed = true;
        const error = new Error('We encountered an internal error. Please try again.');
        error.name = 'InternalError';
        throw error;
      };
    },
    expected: {
      status: 'succeeded',
      manifest: 'complete',
      stored: [0, 1],
      tasks: 1,
      submits: 1,
      downloads: 2,
      lambdaErrors: { 'Persist StorageUnavailableError': 1 },
    },
  },
  {
    where: 'storage',
    fault: "Secrets Manager throttles Persist's key read twice (ThrottlingException)",
    onTaskState: failPersistSecretReads(() => secretsManagerError('ThrottlingException', 'Rate exceeded'), 2),
    expected: {
      status: 'succeeded',
      manifest: 'complete',
      stored: [0, 1],
      tasks: 1,
      submits: 1,
      downloads: 2,
      lambdaErrors: { 'Persist SecretUnavailableError': 2 },
    },
  },
  {
    where: 'storage',
    fault: "Secrets Manager denies Persist's key read (AccessDeniedException)",
    onTaskState: failPersistSecretReads(() =>
      secretsManagerError('AccessDeniedException', 'not authorized to perform GetSecretValue'),
    ),
    expected: {
      status: 'failed',
      error: 'SecretAccessError',
      type: 'auth',
      stored: [],
      tasks: 1,
      submits: 1,
      downloads: 0,
      lambdaErrors: { 'Persist SecretAccessError': 1 },
    },
  },

  // Notify: at least once downstream; a repeat carries the same ids.
  {
    where: 'notify',
    fault: 'Notify runs twice: Lambda.ServiceException after it published and delivered',
    webhook: true,
    arrange: ({ suite }) => {
      let failed = false;
      suite.hooks.interceptTask = async (state, invoke) => {
        if (state !== STATE.notifySucceeded || failed) return invoke();
        failed = true;
        await invoke();
        const error = new Error('Lambda was unable to return the result');
        error.name = 'Lambda.ServiceException';
        throw error;
      };
    },
    expected: {
      status: 'succeeded',
      manifest: 'complete',
      stored: [0, 1],
      tasks: 1,
      submits: 1,
      downloads: 2,
      lambdaErrors: { 'Notify succeeded Lambda.ServiceException': 1 },
    },
    check: async ({ suite, id }, { objects }) => {
      const announced = suite.events.filter((event) => event.detailType === DETAIL_TYPE.succeeded);
      expect(announced).toHaveLength(2);
      expect(announced[0]?.detail.eventId).toMatch(/^evt_/);
      expect(announced[1]?.detail.eventId).toBe(announced[0]?.detail.eventId);
      const ids = suite.webhooks.received.map((delivery) => delivery.headers['webhook-id']);
      expect(ids).toHaveLength(2);
      expect(ids[0]).toMatch(/^msg_/);
      expect(ids[1]).toBe(ids[0]);
      const record = objects.get(`generations/${id}/webhook.json`);
      expect(JSON.parse(String(record?.bytes))).toMatchObject({ webhookId: ids[0], delivered: true });
    },
  },
];
