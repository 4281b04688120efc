import { describe, expect, it, vi } from 'vitest';
import {
  createDashScopeClient,
  type DashScopeClientOptions,
  parseDashScopeTime,
  toSubmitBody,
} from '../../functions/shared/dashscope/client.js';
import {
  errorBodySchema,
  type SubmitBody,
  submitBodySchema,
  submitResponseSchema,
  taskResponseSchema,
} from '../../functions/shared/dashscope/schemas.js';
import {
  ContentPolicyError,
  DashScopeAuthError,
  DashScopeRejectedError,
  DashScopeThrottledError,
  DashScopeTimeoutError,
  DashScopeUnavailableError,
  GenerationError,
  InvalidRequestError,
  PERMANENT_ERROR_NAMES,
  QuotaExhaustedError,
  RETRYABLE_ERROR_NAMES,
} from '../../functions/shared/errors.js';
import { generationRequestSchema } from '../../functions/shared/generation-request.js';

const API_KEY = 'sk-unit-test-7f3a9c2e5b1d4f60';
const BASE_URL = 'https://dashscope.example.test/api/v1';
const TASK_ID = '86ecf553-d340-4e21-af6e-a0c6a421c010';

// The JSON examples of the seed document, verbatim.
const SEED_SUBMIT_PENDING = { output: { task_status: 'PENDING', task_id: 'xxx' }, request_id: 'xxx' };

const SEED_TASK_RUNNING = {
  request_id: 'e5d70b02-ebd3-98ce-9fe8-759d7d7b107d',
  output: {
    task_id: '86ecf553-d340-4e21-af6e-a0c6a421c010',
    task_status: 'RUNNING',
    task_metrics: { TOTAL: 4, SUCCEEDED: 1, FAILED: 0 },
  },
};

const SEED_TASK_SUCCEEDED = {
  request_id: '85eaba38-0185-99d7-8d16-4d9135238846',
  output: {
    task_id: '86ecf553-d340-4e21-af6e-a0c6a421c010',
    task_status: 'SUCCEEDED',
    results: [{ url: 'example_url_1' }, { url: 'example_url_2' }],
    task_metrics: { TOTAL: 2, SUCCEEDED: 2, FAILED: 0 },
  },
  usage: { image_count: 2 },
};

const SEED_TASK_PARTIAL = {
  request_id: '85eaba38-0185-99d7-8d16-4d9135238846',
  output: {
    task_id: '86ecf553-d340-4e21-af6e-a0c6a421c010',
    task_status: 'SUCCEEDED',
    results: [
      { url: 'example_url_1' },
      {
        code: 'InternalError.Timeout',
        message:
          'An internal timeout error has occured during execution, please try again later or contact service support.',
      },
    ],
    task_metrics: { TOTAL: 2, SUCCEEDED: 1, FAILED: 1 },
  },
  usage: { image_count: 1 },
};

const SEED_TASK_FAILED = {
  request_id: 'e5d70b02-ebd3-98ce-9fe8-759d7d7b107d',
  output: {
    task_id: '86ecf553-d340-4e21-af6e-a0c6a421c010',
    task_status: 'FAILED',
    code: 'InvalidParameter',
    message: 'The image source is invalid.',
    task_metrics: { TOTAL: 4, SUCCEEDED: 0, FAILED: 4 },
  },
};

/** The Python SDK's printed result: SDK-only fields (`status_code`, `code: null`) beside the HTTP ones. */
const SEED_SDK_RESULT = {
  status_code: 200,
  request_id: 'ea8bfe77-2f35-9df3-ba47-7e05e917b3df',
  code: null,
  message: '',
  output: {
    task_id: 'dea97660-9651-4e6b-a9c3-8afb325b28d0',
    task_status: 'SUCCEEDED',
    results: [{ url: 'example_url' }],
    task_metrics: { TOTAL: 1, SUCCEEDED: 1, FAILED: 0 },
  },
  usage: { image_count: 1 },
};

const SEED_ERROR_BODY = {
  code: 'InvalidApiKey',
  message: 'Invalid API-key provided.',
  request_id: 'fb53c4ec-1c12-4fc4-a580-cdb7c3261fc1',
};

const SUBMIT_BODY: SubmitBody = {
  model: 'stable-diffusion-3.5-large',
  input: { prompt: 'a running cat', negative_prompt: 'yellow cat' },
  parameters: { size: '512*512', n: 4, steps: 40, cfg: 4.5, seed: 42, shift: 3 },
};

interface RecordedCall {
  readonly url: string;
  readonly method: string | undefined;
  readonly headers: Headers;
  readonly body: RequestInit['body'];
  readonly signal: AbortSignal | null | undefined;
}

function jsonResponse(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
}

/** A fetch that answers every call with a fresh response from `answer` and records what it was sent. */
function recordingFetch(answer: () => Response = () => jsonResponse(SEED_TASK_RUNNING)) {
  const calls: RecordedCall[] = [];
  const fetch = vi.fn<typeof globalThis.fetch>(async (input, init) => {
    calls.push({
      url: String(input),
      method: init?.method,
      headers: new Headers(init?.headers),
      body: init?.body,
      signal: init?.signal,
    });
    return answer();
  });
  return { fetch, calls };
}

/** A fetch that never answers and rejects only when its signal aborts, as undici does. */
const hangingFetch: typeof globalThis.fetch = (_input, init) =>
  new Promise<Response>((_resolve, reject) => {
    const signal = init?.signal;
    signal?.addEventListener('abort', () => reject(signal.reason), { once: true });
  });

function clientWith(fetch: typeof globalThis.fetch, options: Partial<DashScopeClientOptions> = {}) {
  return createDashScopeClient({ baseUrl: BASE_URL, apiKey: async () => API_KEY, fetch, ...options });
}

async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to reject');
}

function onlyCall(calls: readonly RecordedCall[]): RecordedCall {
  expect(calls).toHaveLength(1);
  const [call] = calls;
  if (!call) throw new Error('no call recorded');
  return call;
}

describe('DashScope schemas: the seed examples', () => {
  it('parses the PENDING submit answer with submitResponseSchema', () => {
    // Act
    const parsed = submitResponseSchema.parse(SEED_SUBMIT_PENDING);

    // Assess
    expect(parsed).toEqual({ request_id: 'xxx', output: { task_id: 'xxx', task_status: 'PENDING' } });
  });

  it.each([
    ['RUNNING', SEED_TASK_RUNNING],
    ['SUCCEEDED', SEED_TASK_SUCCEEDED],
    ['partially failed SUCCEEDED', SEED_TASK_PARTIAL],
    ['FAILED', SEED_TASK_FAILED],
  ])('parses the %s query answer with taskResponseSchema', (_label, example) => {
    // Act
    const parsed = taskResponseSchema.safeParse(example);

    // Assess
    expect(parsed.success).toBe(true);
    expect(parsed.data).toEqual(example);
  });

  it('parses the Python SDK result, dropping its SDK-only fields', () => {
    // Act
    const parsed = taskResponseSchema.parse(SEED_SDK_RESULT);

    // Assess
    expect(parsed).toEqual({
      request_id: SEED_SDK_RESULT.request_id,
      output: SEED_SDK_RESULT.output,
      usage: SEED_SDK_RESULT.usage,
    });
  });

  it('keeps the reason of a failed image of a partially failed task', () => {
    // Act
    const parsed = taskResponseSchema.parse(SEED_TASK_PARTIAL);

    // Assess
    expect(parsed.output.results?.[1]).toEqual({
      code: 'InternalError.Timeout',
      message: expect.stringContaining('internal timeout'),
    });
  });

  it('parses the InvalidApiKey error body with errorBodySchema', () => {
    // Act
    const parsed = errorBodySchema.parse(SEED_ERROR_BODY);

    // Assess
    expect(parsed).toEqual(SEED_ERROR_BODY);
  });

  it('tolerates unknown fields in a query answer and leaves them out of the result', () => {
    // Prepare
    const withExtras = {
      ...SEED_TASK_SUCCEEDED,
      future_top_level: true,
      output: { ...SEED_TASK_SUCCEEDED.output, new_field: 'x' },
    };

    // Act
    const parsed = taskResponseSchema.safeParse(withExtras);

    // Assess
    expect(parsed.success).toBe(true);
    expect(parsed.data).toEqual(SEED_TASK_SUCCEEDED);
  });

  it('tolerates unknown fields in a submit answer', () => {
    // Prepare
    const withExtras = { ...SEED_SUBMIT_PENDING, output: { ...SEED_SUBMIT_PENDING.output, extra: 1 } };

    // Act
    const parsed = submitResponseSchema.safeParse(withExtras);

    // Assess
    expect(parsed.success).toBe(true);
    expect(parsed.data?.output).toEqual(SEED_SUBMIT_PENDING.output);
  });

  it('rejects a task status outside the documented set', () => {
    // Act
    const parsed = taskResponseSchema.safeParse({
      request_id: 'r',
      output: { task_id: 't', task_status: 'DONE' },
    });

    // Assess
    expect(parsed.success).toBe(false);
  });
});

describe('DashScope client: requests', () => {
  it('submits with POST to the image-synthesis path', async () => {
    // Prepare
    const { fetch, calls } = recordingFetch(() => jsonResponse(SEED_SUBMIT_PENDING));

    // Act
    await clientWith(fetch).submit(SUBMIT_BODY);

    // Assess
    const call = onlyCall(calls);
    expect(call.method).toBe('POST');
    expect(call.url).toBe(`${BASE_URL}/services/aigc/text2image/image-synthesis`);
  });

  it('sends the bearer key, X-DashScope-Async: enable and a JSON content type on submit', async () => {
    // Prepare
    const { fetch, calls } = recordingFetch(() => jsonResponse(SEED_SUBMIT_PENDING));

    // Act
    await clientWith(fetch).submit(SUBMIT_BODY);

    // Assess
    const { headers } = onlyCall(calls);
    expect(headers.get('Authorization')).toBe(`Bearer ${API_KEY}`);
    expect(headers.get('X-DashScope-Async')).toBe('enable');
    expect(headers.get('Content-Type')).toBe('application/json');
  });

  it('sends the submit body as JSON', async () => {
    // Prepare
    const { fetch, calls } = recordingFetch(() => jsonResponse(SEED_SUBMIT_PENDING));

    // Act
    await clientWith(fetch).submit(SUBMIT_BODY);

    // Assess
    const { body } = onlyCall(calls);
    expect(typeof body).toBe('string');
    expect(JSON.parse(String(body))).toEqual(SUBMIT_BODY);
  });

  it('returns the parsed submit answer', async () => {
    // Prepare
    const { fetch } = recordingFetch(() => jsonResponse(SEED_SUBMIT_PENDING));

    // Act
    const answer = await clientWith(fetch).submit(SUBMIT_BODY);

    // Assess
    expect(answer).toEqual(SEED_SUBMIT_PENDING);
  });

  it('queries a task with GET /tasks/{id}, the bearer key, no async header and no body', async () => {
    // Prepare
    const { fetch, calls } = recordingFetch(() => jsonResponse(SEED_TASK_RUNNING));

    // Act
    await clientWith(fetch).getTask(TASK_ID);

    // Assess
    const call = onlyCall(calls);
    expect(call.method).toBe('GET');
    expect(call.url).toBe(`${BASE_URL}/tasks/${TASK_ID}`);
    expect(call.headers.get('Authorization')).toBe(`Bearer ${API_KEY}`);
    expect(call.headers.has('X-DashScope-Async')).toBe(false);
    expect(call.body).toBeUndefined();
  });

  it('returns the parsed query answer', async () => {
    // Prepare
    const { fetch } = recordingFetch(() => jsonResponse(SEED_TASK_SUCCEEDED));

    // Act
    const answer = await clientWith(fetch).getTask(TASK_ID);

    // Assess
    expect(answer).toEqual(SEED_TASK_SUCCEEDED);
  });

  it('refuses a query answer about another task, as retryable', async () => {
    // Prepare
    const { fetch } = recordingFetch(() => jsonResponse(SEED_TASK_SUCCEEDED));

    // Act
    const error = await clientWith(fetch)
      .getTask('someone-elses-task')
      .catch((caught: unknown) => caught);

    // Assess
    expect(error).toBeInstanceOf(DashScopeUnavailableError);
    expect((error as Error).message).toContain(`about task ${TASK_ID}, not someone-elses-task`);
  });

  it('cancels with POST /tasks/{id}/cancel, no async header and no body', async () => {
    // Prepare
    const { fetch, calls } = recordingFetch(() => jsonResponse({ request_id: 'r-cancel' }));

    // Act
    await clientWith(fetch).cancel(TASK_ID);

    // Assess
    const call = onlyCall(calls);
    expect(call.method).toBe('POST');
    expect(call.url).toBe(`${BASE_URL}/tasks/${TASK_ID}/cancel`);
    expect(call.headers.get('Authorization')).toBe(`Bearer ${API_KEY}`);
    expect(call.headers.has('X-DashScope-Async')).toBe(false);
    expect(call.body).toBeUndefined();
  });

  it('escapes a task id so it stays one path segment', async () => {
    // Prepare
    const { fetch, calls } = recordingFetch();

    // Act
    // The recorded answer is about another task, which the client refuses: only the URL matters here.
    await clientWith(fetch)
      .getTask('a/../b?c')
      .catch(() => undefined);

    // Assess
    expect(onlyCall(calls).url).toBe(`${BASE_URL}/tasks/a%2F..%2Fb%3Fc`);
  });

  it('lists tasks with GET /tasks and the query parameters', async () => {
    // Prepare
    const { fetch, calls } = recordingFetch(() => jsonResponse({ request_id: 'r', data: [], total: 0 }));

    // Act
    await clientWith(fetch).listTasks({ startTime: '20240614000000', status: 'PENDING' });

    // Assess
    const url = new URL(onlyCall(calls).url);
    expect(`${url.origin}${url.pathname}`).toBe(`${BASE_URL}/tasks`);
    expect(Object.fromEntries(url.searchParams)).toEqual({
      start_time: '20240614000000',
      status: 'PENDING',
      page_no: '1',
      page_size: '10',
    });
  });

  it.each([
    ['submit', (c: ReturnType<typeof clientWith>) => c.submit(SUBMIT_BODY), SEED_SUBMIT_PENDING],
    ['getTask', (c: ReturnType<typeof clientWith>) => c.getTask(TASK_ID), SEED_TASK_RUNNING],
    ['cancel', (c: ReturnType<typeof clientWith>) => c.cancel(TASK_ID), { request_id: 'r' }],
  ])('sends X-DashScope-WorkSpace on %s when a workspace is configured', async (_label, act, answer) => {
    // Prepare
    const { fetch, calls } = recordingFetch(() => jsonResponse(answer));

    // Act
    await act(clientWith(fetch, { workspace: 'ws_QTggmeAxxxxx' }));

    // Assess
    expect(onlyCall(calls).headers.get('X-DashScope-WorkSpace')).toBe('ws_QTggmeAxxxxx');
  });

  it('sends no X-DashScope-WorkSpace when no workspace is configured', async () => {
    // Prepare
    const { fetch, calls } = recordingFetch(() => jsonResponse(SEED_SUBMIT_PENDING));

    // Act
    await clientWith(fetch).submit(SUBMIT_BODY);

    // Assess
    expect(onlyCall(calls).headers.has('X-DashScope-WorkSpace')).toBe(false);
  });

  it.each([
    ['without a trailing slash', BASE_URL],
    ['with a trailing slash', `${BASE_URL}/`],
    ['with several trailing slashes', `${BASE_URL}//`],
  ])('builds the same URLs from a base URL %s', async (_label, baseUrl) => {
    // Prepare
    const { fetch, calls } = recordingFetch(() => jsonResponse(SEED_SUBMIT_PENDING));

    // Act
    await clientWith(fetch, { baseUrl }).submit(SUBMIT_BODY);

    // Assess
    expect(onlyCall(calls).url).toBe(`${BASE_URL}/services/aigc/text2image/image-synthesis`);
  });

  it('reads the API key on every call, so a rotated key takes effect', async () => {
    // Prepare
    const keys = ['sk-first', 'sk-second'];
    const { fetch, calls } = recordingFetch();
    const client = clientWith(fetch, { apiKey: async () => keys.shift() ?? 'sk-none' });

    // Act
    await client.getTask(TASK_ID);
    await client.getTask(TASK_ID);

    // Assess
    expect(calls.map((call) => call.headers.get('Authorization'))).toEqual([
      'Bearer sk-first',
      'Bearer sk-second',
    ]);
  });
});

describe('DashScope client: error mapping', () => {
  type ErrorClass = abstract new (...args: never[]) => GenerationError;
  const table: Array<[number, string, ErrorClass, string, boolean, string]> = [
    [400, 'InvalidParameter', InvalidRequestError, 'InvalidRequestError', false, 'invalid_request'],
    [400, 'DataInspectionFailed', ContentPolicyError, 'ContentPolicyError', false, 'content_policy'],
    [400, 'Arrearage', QuotaExhaustedError, 'QuotaExhaustedError', false, 'quota_exhausted'],
    [401, 'InvalidApiKey', DashScopeAuthError, 'DashScopeAuthError', false, 'auth'],
    [403, 'AccessDenied', DashScopeAuthError, 'DashScopeAuthError', false, 'auth'],
    [404, 'ModelNotFound', InvalidRequestError, 'InvalidRequestError', false, 'invalid_request'],
    [404, 'WorkSpaceNotFound', DashScopeAuthError, 'DashScopeAuthError', false, 'auth'],
    [408, 'RequestTimeOut', DashScopeUnavailableError, 'DashScopeUnavailableError', true, 'upstream_error'],
    [429, 'Throttling.RateQuota', DashScopeThrottledError, 'DashScopeThrottledError', true, 'rate_limited'],
    [429, 'Throttling.AllocationQuota', QuotaExhaustedError, 'QuotaExhaustedError', false, 'quota_exhausted'],
    [500, 'InternalError', DashScopeUnavailableError, 'DashScopeUnavailableError', true, 'upstream_error'],
    [503, 'ModelUnavailable', DashScopeUnavailableError, 'DashScopeUnavailableError', true, 'upstream_error'],
  ];

  it.each(table)(
    'maps HTTP %i %s to its named error',
    async (status, code, errorClass, name, retryable, type) => {
      // Prepare
      const { fetch } = recordingFetch(() =>
        jsonResponse({ code, message: `upstream says ${code}`, request_id: 'req-err-1' }, status),
      );

      // Act
      const error = await rejectionOf(clientWith(fetch).getTask(TASK_ID));

      // Assess
      expect(error).toBeInstanceOf(errorClass);
      expect(error).toMatchObject({
        name,
        retryable,
        type,
        upstreamCode: code,
        requestId: 'req-err-1',
        httpStatus: status,
      });
    },
  );

  it.each(table)('puts the name of HTTP %i %s on the matching workflow list', async (status, code) => {
    // Prepare
    const { fetch } = recordingFetch(() => jsonResponse({ code, message: 'm', request_id: 'r' }, status));

    // Act
    const error = (await rejectionOf(clientWith(fetch).getTask(TASK_ID))) as GenerationError;

    // Assess
    const names: readonly string[] = error.retryable ? RETRYABLE_ERROR_NAMES : PERMANENT_ERROR_NAMES;
    expect(names).toContain(error.name);
  });

  it('names the call, the status, the code and the upstream message in the error message', async () => {
    // Prepare
    const { fetch } = recordingFetch(() => jsonResponse(SEED_ERROR_BODY, 401));

    // Act
    const error = await rejectionOf(clientWith(fetch).submit(SUBMIT_BODY));

    // Assess
    expect((error as Error).message).toBe(
      'POST /services/aigc/text2image/image-synthesis: HTTP 401 InvalidApiKey: Invalid API-key provided.',
    );
  });

  it('maps 400 UnsupportedOperation on cancel to a permanent DashScopeRejectedError', async () => {
    // Prepare
    const { fetch } = recordingFetch(() =>
      jsonResponse(
        { code: 'UnsupportedOperation', message: 'Only PENDING tasks can be canceled', request_id: 'r-c' },
        400,
      ),
    );

    // Act
    const error = await rejectionOf(clientWith(fetch).cancel(TASK_ID));

    // Assess
    expect(error).toBeInstanceOf(DashScopeRejectedError);
    expect(error).toMatchObject({
      name: 'DashScopeRejectedError',
      retryable: false,
      type: 'upstream_error',
      upstreamCode: 'UnsupportedOperation',
      requestId: 'r-c',
      httpStatus: 400,
    });
  });

  it('maps a 502 with a non-JSON body to a retryable DashScopeUnavailableError without a code', async () => {
    // Prepare
    const { fetch } = recordingFetch(
      () => new Response('<html><body>502 Bad Gateway</body></html>', { status: 502 }),
    );

    // Act
    const error = await rejectionOf(clientWith(fetch).getTask(TASK_ID));

    // Assess
    expect(error).toBeInstanceOf(DashScopeUnavailableError);
    expect(error).toMatchObject({
      name: 'DashScopeUnavailableError',
      retryable: true,
      type: 'upstream_error',
      upstreamCode: undefined,
      requestId: undefined,
      httpStatus: 502,
    });
  });

  it('maps a 200 whose body has the wrong shape to a retryable DashScopeUnavailableError', async () => {
    // Prepare
    const { fetch } = recordingFetch(() => jsonResponse({ output: { task_status: 'DONE' } }));

    // Act
    const error = await rejectionOf(clientWith(fetch).getTask(TASK_ID));

    // Assess
    expect(error).toBeInstanceOf(DashScopeUnavailableError);
    expect(error).toMatchObject({ retryable: true, httpStatus: 200 });
  });

  it('maps a 200 whose body is not JSON to a retryable DashScopeUnavailableError', async () => {
    // Prepare
    const { fetch } = recordingFetch(() => new Response('OK', { status: 200 }));

    // Act
    const error = await rejectionOf(clientWith(fetch).submit(SUBMIT_BODY));

    // Assess
    expect(error).toBeInstanceOf(DashScopeUnavailableError);
  });

  it('maps a reset connection to a retryable DashScopeTimeoutError naming the reason', async () => {
    // Prepare
    const reset = new TypeError('fetch failed', { cause: { code: 'ECONNRESET' } });
    const fetch = vi.fn<typeof globalThis.fetch>().mockRejectedValue(reset);

    // Act
    const error = await rejectionOf(clientWith(fetch).getTask(TASK_ID));

    // Assess
    expect(error).toBeInstanceOf(DashScopeTimeoutError);
    expect(error).toMatchObject({ name: 'DashScopeTimeoutError', retryable: true, type: 'timeout' });
    expect((error as Error).message).toContain('ECONNRESET');
    expect((error as Error).cause).toBe(reset);
  });

  it('gives up on a query that never answers after timeoutMs with a DashScopeTimeoutError', async () => {
    // Prepare
    const client = clientWith(hangingFetch, { timeoutMs: 50 });

    // Act
    const error = await rejectionOf(client.getTask(TASK_ID));

    // Assess
    expect(error).toBeInstanceOf(DashScopeTimeoutError);
    expect((error as Error).message).toContain('no answer within 50 ms');
  });

  it('gives up on a submit that never answers after submitTimeoutMs with a DashScopeTimeoutError', async () => {
    // Prepare
    const client = clientWith(hangingFetch, { timeoutMs: 60_000, submitTimeoutMs: 50 });

    // Act
    const error = await rejectionOf(client.submit(SUBMIT_BODY));

    // Assess
    expect(error).toBeInstanceOf(DashScopeTimeoutError);
    expect((error as Error).message).toContain('no answer within 50 ms');
  });

  describe('never leaks the API key', () => {
    const scenarios: Array<[string, typeof globalThis.fetch]> = [
      ['a 401 InvalidApiKey', async () => jsonResponse(SEED_ERROR_BODY, 401)],
      ['a 500 InternalError', async () => jsonResponse({ code: 'InternalError', message: 'boom' }, 500)],
      ['a non-JSON 502', async () => new Response('Bad Gateway', { status: 502 })],
      ['a 200 of the wrong shape', async () => jsonResponse({ unexpected: true })],
      [
        'a reset connection',
        async () => Promise.reject(new TypeError('fetch failed', { cause: { code: 'ECONNRESET' } })),
      ],
      ['a timeout', hangingFetch],
    ];

    it.each(scenarios)(
      'keeps it out of the message and the JSON of the error after %s',
      async (_label, fetch) => {
        // Prepare
        const client = clientWith(fetch, { timeoutMs: 50, submitTimeoutMs: 50 });

        // Act
        const error = await rejectionOf(client.submit(SUBMIT_BODY));

        // Assess
        expect(error).toBeInstanceOf(GenerationError);
        const texts: string[] = [JSON.stringify(error)];
        for (let e: unknown = error; e instanceof Error; e = e.cause) texts.push(e.message, String(e.stack));
        for (const text of texts) expect(text).not.toContain(API_KEY);
      },
    );
  });
});

describe('toSubmitBody', () => {
  it('always sends n, even at its default', () => {
    // Prepare
    const request = generationRequestSchema.parse({ prompt: 'a running cat' });

    // Act
    const body = toSubmitBody(request, 7);

    // Assess
    expect(body.parameters.n).toBe(1);
  });

  it('sends the seed it is given', () => {
    // Prepare
    const request = generationRequestSchema.parse({ prompt: 'a running cat', seed: 42 });

    // Act
    const body = toSubmitBody(request, 1234);

    // Assess
    expect(body.parameters.seed).toBe(1234);
  });

  it('sends every parameter explicitly', () => {
    // Prepare
    const request = generationRequestSchema.parse({ prompt: 'a running cat' });

    // Act
    const body = toSubmitBody(request, 0);

    // Assess
    expect(body).toEqual({
      model: 'stable-diffusion-3.5-large',
      input: { prompt: 'a running cat' },
      parameters: { size: '1024*1024', n: 1, steps: 40, cfg: 4.5, seed: 0, shift: 3 },
    });
  });

  it('omits negative_prompt and init_image when the request has none', () => {
    // Prepare
    const request = generationRequestSchema.parse({ prompt: 'a running cat' });

    // Act
    const body = toSubmitBody(request, 7);

    // Assess
    expect(Object.keys(body.input)).toEqual(['prompt']);
    expect(JSON.stringify(body)).not.toContain('negative_prompt');
    expect(JSON.stringify(body)).not.toContain('init_image');
  });

  it('passes negative_prompt and init_image through when present', () => {
    // Prepare
    const request = generationRequestSchema.parse({
      prompt: 'a running cat',
      negative_prompt: 'yellow cat',
      init_image: 'https://example.com/x.png',
    });

    // Act
    const body = toSubmitBody(request, 7);

    // Assess
    expect(body.input).toEqual({
      prompt: 'a running cat',
      negative_prompt: 'yellow cat',
      init_image: 'https://example.com/x.png',
    });
  });

  it('builds a body that satisfies submitBodySchema', () => {
    // Prepare
    const request = generationRequestSchema.parse({ prompt: 'a running cat', n: 4, size: '512*1024' });

    // Act
    const parsed = submitBodySchema.safeParse(toSubmitBody(request, 42));

    // Assess
    expect(parsed.success).toBe(true);
  });
});

describe('parseDashScopeTime', () => {
  it('reads the seed timestamp as China Standard Time and returns ISO 8601 UTC', () => {
    // Act
    const iso = parseDashScopeTime('2024-06-14 14:30:44.096');

    // Assess
    expect(iso).toBe('2024-06-14T06:30:44.096Z');
  });

  it('accepts a timestamp without fractional seconds', () => {
    // Act
    const iso = parseDashScopeTime('2024-06-14 14:31:04');

    // Assess
    expect(iso).toBe('2024-06-14T06:31:04.000Z');
  });

  it('crosses the date line back to the previous UTC day', () => {
    // Act
    const iso = parseDashScopeTime('2024-06-14 02:00:00.000');

    // Assess
    expect(iso).toBe('2024-06-13T18:00:00.000Z');
  });

  it.each([
    ['undefined', undefined],
    ['an empty string', ''],
    ['a word', 'garbage'],
    ['a date only', '2024-06-14'],
    ['an out-of-range time', '2024-13-45 99:99:99'],
    ['epoch milliseconds', '1718346644096'],
    ['a trailing zone', '2024-06-14 14:30:44.096Z'],
  ])('returns undefined for %s', (_label, value) => {
    // Act
    const iso = parseDashScopeTime(value);

    // Assess
    expect(iso).toBeUndefined();
  });
});

describe('parseDashScopeTime: impossible dates', () => {
  it.each(['2024-02-30 10:00:00', '2023-02-29 00:00:00.000', '2024-13-01 00:00:00'])(
    'returns undefined for %s',
    (value) => {
      expect(parseDashScopeTime(value)).toBeUndefined();
    },
  );

  it('accepts a leap day', () => {
    expect(parseDashScopeTime('2024-02-29 08:00:00.000')).toBe('2024-02-29T00:00:00.000Z');
  });
});
