import type { z } from 'zod';
import {
  type DashScopeRejectedError,
  DashScopeTimeoutError,
  DashScopeUnavailableError,
  errorOfType,
  type GenerationError,
  isRetryableStatus,
  upstreamErrorType,
} from '../errors.js';
import type { GenerationRequest } from '../generation-request.js';
import {
  cancelResponseSchema,
  errorBodySchema,
  type ListTasksResponse,
  listTasksResponseSchema,
  type SubmitBody,
  type SubmitResponse,
  submitResponseSchema,
  type TaskResponse,
  type TaskStatus,
  taskResponseSchema,
} from './schemas.js';

/** DashScope's mainland endpoint, the only region serving Stable Diffusion 3.5. */
export const DEFAULT_DASHSCOPE_BASE_URL = 'https://dashscope.aliyuncs.com/api/v1';

const SUBMIT_PATH = '/services/aigc/text2image/image-synthesis';

export interface DashScopeClientOptions {
  /** API root, e.g. {@link DEFAULT_DASHSCOPE_BASE_URL}. */
  readonly baseUrl: string;
  /** Sent as `X-DashScope-WorkSpace`; required for sub-account keys. */
  readonly workspace?: string;
  /** Returns the API key; called per request so a cached secret can rotate. */
  readonly apiKey: () => Promise<string>;
  /** @default globalThis.fetch */
  readonly fetch?: typeof fetch;
  /** Timeout of a query, cancel or list call, in ms. @default 10000 */
  readonly timeoutMs?: number;
  /**
   * Timeout of a submit, in ms. Longer than the others: a submit that times out may still have
   * created a task, so we would rather wait than guess. @default 30000
   */
  readonly submitTimeoutMs?: number;
}

export interface ListTasksQuery {
  /** `YYYYMMDDhhmmss`; the window may span at most 24 h. */
  readonly startTime?: string;
  readonly endTime?: string;
  readonly modelName?: string;
  readonly status?: TaskStatus;
  readonly pageNo?: number;
  readonly pageSize?: number;
}

/** The three calls the workflow needs, and the list call the poll policy may use. */
export interface DashScopeClient {
  /** Creates a task. Not idempotent: see docs/decisions/0004-submitting-twice.md. */
  submit(body: SubmitBody): Promise<SubmitResponse>;
  /** Queries a task; throws {@link DashScopeUnavailableError} for an answer about another task. */
  getTask(taskId: string): Promise<TaskResponse>;
  /** Cancels a PENDING task; throws {@link DashScopeRejectedError} (`UnsupportedOperation`) otherwise. */
  cancel(taskId: string): Promise<void>;
  listTasks(query: ListTasksQuery): Promise<ListTasksResponse>;
}

/**
 * Creates a DashScope client over an injected `fetch`. Every call has a timeout, every answer is
 * parsed with zod, and every failure becomes one of the named errors in `errors.ts`.
 * The API key is only ever placed in the `Authorization` header.
 */
export function createDashScopeClient(options: DashScopeClientOptions): DashScopeClient {
  const doFetch = options.fetch ?? globalThis.fetch;
  const baseUrl = options.baseUrl.replace(/\/+$/, '');
  const timeoutMs = options.timeoutMs ?? 10_000;
  const submitTimeoutMs = options.submitTimeoutMs ?? 30_000;

  async function call<T>(
    method: 'GET' | 'POST',
    path: string,
    schema: z.ZodType<T>,
    init: { body?: unknown; async?: boolean; timeoutMs: number },
  ): Promise<T> {
    const headers: Record<string, string> = { Authorization: `Bearer ${await options.apiKey()}` };
    if (options.workspace) headers['X-DashScope-WorkSpace'] = options.workspace;
    if (init.async) headers['X-DashScope-Async'] = 'enable';
    if (init.body !== undefined) headers['Content-Type'] = 'application/json';

    const what = `${method} ${path.split('?')[0]}`;
    let status: number;
    let text: string;
    try {
      const response = await doFetch(`${baseUrl}${path}`, {
        method,
        headers,
        body: init.body === undefined ? undefined : JSON.stringify(init.body),
        signal: AbortSignal.timeout(init.timeoutMs),
        redirect: 'error',
      });
      status = response.status;
      text = await response.text();
    } catch (error) {
      throw networkError(what, init.timeoutMs, error);
    }

    const json = parseJson(text);
    if (status !== 200) throw errorFromResponse(what, status, json);
    const parsed = schema.safeParse(json);
    if (!parsed.success) {
      throw new DashScopeUnavailableError(`${what}: DashScope answered a body of unexpected shape`, {
        httpStatus: status,
        cause: parsed.error,
      });
    }
    return parsed.data;
  }

  return {
    submit: (body) =>
      call('POST', SUBMIT_PATH, submitResponseSchema, { body, async: true, timeoutMs: submitTimeoutMs }),
    getTask: async (taskId) => {
      const response = await call('GET', `/tasks/${encodeURIComponent(taskId)}`, taskResponseSchema, {
        timeoutMs,
      });
      // An answer about another task (a proxy or cache mixing answers up) must never be taken for
      // ours: its status and results would be stored under our generation.
      if (response.output.task_id !== taskId) {
        throw new DashScopeUnavailableError(
          `GET /tasks: DashScope answered about task ${response.output.task_id}, not ${taskId}`,
          { requestId: response.request_id, httpStatus: 200 },
        );
      }
      return response;
    },
    cancel: async (taskId) => {
      await call('POST', `/tasks/${encodeURIComponent(taskId)}/cancel`, cancelResponseSchema, { timeoutMs });
    },
    listTasks: (query) =>
      call('GET', `/tasks?${listQueryString(query)}`, listTasksResponseSchema, { timeoutMs }),
  };
}

function listQueryString(query: ListTasksQuery): string {
  const params = new URLSearchParams();
  if (query.startTime) params.set('start_time', query.startTime);
  if (query.endTime) params.set('end_time', query.endTime);
  if (query.modelName) params.set('model_name', query.modelName);
  if (query.status) params.set('status', query.status);
  params.set('page_no', String(query.pageNo ?? 1));
  params.set('page_size', String(query.pageSize ?? 10));
  return params.toString();
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function networkError(what: string, timeoutMs: number, error: unknown): DashScopeTimeoutError {
  const isTimeout = error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError');
  const reason = isTimeout
    ? `no answer within ${timeoutMs} ms`
    : `connection failed (${networkReason(error)})`;
  return new DashScopeTimeoutError(`${what}: ${reason}`, { cause: error });
}

function networkReason(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause as { code?: string; message?: string } | undefined;
  return cause?.code ?? cause?.message ?? error.message;
}

/**
 * Maps an HTTP status and DashScope `code` to a named error, with the type
 * {@link upstreamErrorType} gives that code everywhere; 408, 429 and 5xx answers are retryable.
 */
export function errorFromResponse(what: string, status: number, json: unknown): GenerationError {
  const body = errorBodySchema.safeParse(json);
  const code = body.success ? body.data.code : undefined;
  const upstreamMessage = body.success ? body.data.message : '';
  const details = {
    upstreamCode: code,
    requestId: body.success ? body.data.request_id : undefined,
    httpStatus: status,
    retryable: isRetryableStatus(status),
  };
  const message = `${what}: HTTP ${status}${code ? ` ${code}` : ''}${upstreamMessage ? `: ${upstreamMessage}` : ''}`;
  const type = upstreamErrorType({ code, message: upstreamMessage, httpStatus: status });
  return errorOfType(type, message, details);
}

/** Builds DashScope's submit body from a validated request; `n` is always explicit. */
export function toSubmitBody(request: GenerationRequest, seed: number): SubmitBody {
  return {
    model: request.model,
    input: {
      prompt: request.prompt,
      ...(request.negative_prompt ? { negative_prompt: request.negative_prompt } : {}),
      ...(request.init_image ? { init_image: request.init_image } : {}),
    },
    parameters: {
      size: request.size,
      n: request.n,
      steps: request.steps,
      cfg: request.cfg,
      seed,
      shift: request.shift,
    },
  };
}

/**
 * Converts DashScope's zone-less timestamps (`2024-06-14 14:30:44.096`, China Standard Time)
 * to ISO 8601 UTC. Returns undefined for a missing or unreadable value.
 */
export function parseDashScopeTime(value: string | undefined, utcOffset = '+08:00'): string | undefined {
  if (!value) return undefined;
  const match = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?)$/.exec(value.trim());
  if (!match) return undefined;
  const date = new Date(`${match[1]}T${match[2]}${utcOffset}`);
  if (Number.isNaN(date.getTime())) return undefined;
  // Date rolls impossible days over (Feb 30 → Mar 1): refuse those instead.
  const [year, month, day] = (match[1] ?? '').split('-').map(Number);
  const local = new Date(`${match[1]}T00:00:00Z`);
  const valid =
    local.getUTCFullYear() === year && local.getUTCMonth() + 1 === month && local.getUTCDate() === day;
  return valid ? date.toISOString() : undefined;
}

/**
 * Formats epoch ms as the list endpoint's `YYYYMMDDhhmmss` filter, in China Standard Time (the zone
 * DashScope's own times are read in, see {@link parseDashScopeTime}), truncated to the second.
 */
export function formatCompactCstTime(epochMs: number): string {
  return new Date(epochMs + 8 * 60 * 60 * 1000).toISOString().replace(/\D/g, '').slice(0, 14);
}
