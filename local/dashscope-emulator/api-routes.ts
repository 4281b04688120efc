import { setTimeout as sleep } from 'node:timers/promises';
import { type Context, Hono } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { resetConnection } from './connection.js';
import { type EmulatorContext, settledNow } from './context.js';
import { apiErrorBody, newRequestId } from './errors.js';
import { parseListQuery } from './list-query.js';
import { createTaskRecord } from './new-task.js';
import { resultUrlFor } from './result-download.js';
import { parseSubmitBody } from './submit-request.js';
import { statusAt } from './task-record.js';
import { taskListEntry, taskQueryBody, unknownTaskBody } from './task-view.js';
import type { ConnectionFault, EmulatorOp } from './types.js';

const CANCEL_REFUSED = 'Failed to cancel the task, please confirm if the task status is PENDING.';

/** The DashScope API routes, to be mounted under `/api/v1`. */
export function createApiRoutes(context: EmulatorContext): Hono {
  const api = new Hono();
  api.post('/services/aigc/text2image/image-synthesis', (c) => handle(c, context, 'submit', submit));
  api.get('/tasks', (c) => handle(c, context, 'list', list));
  api.get('/tasks/:task_id', (c) => handle(c, context, 'get', query));
  api.post('/tasks/:task_id/cancel', (c) => handle(c, context, 'cancel', cancel));
  return api;
}

type Operation = (c: Context, context: EmulatorContext) => Response | Promise<Response>;

/**
 * Admits the call (see {@link admit}), does the operation, then applies a connection fault that
 * acts after the work: the answer lost, or held back.
 */
async function handle(c: Context, context: EmulatorContext, op: EmulatorOp, operation: Operation) {
  const admission = op === 'submit' ? admit(c, context, op) : admitTasksApi(c, context, op);
  if ('refused' in admission) return admission.refused;
  const response = await operation(c, context);
  const after = admission.after;
  if (after?.kind === 'slow') await sleep(after.delayMs, undefined, { ref: false });
  return after?.kind === 'lost-response' ? resetConnection(response) : response;
}

async function submit(c: Context, context: EmulatorContext): Promise<Response> {
  if (c.req.header('X-DashScope-Async') !== 'enable') {
    return apiError(c, 403, 'AccessDenied', 'current user api does not support synchronous calls');
  }
  const text = await c.req.text();
  // From here on nothing awaits, so concurrent submits cannot both pass the quota check. Only
  // accepted submits use up the quota: check now, record once the task exists.
  const now = settledNow(context);
  if (context.submitLimiter.isFull(now)) return throttled(c, context);
  const body = parseJson(text);
  if (!body.ok) return apiError(c, 400, 'InvalidParameter', 'the request body must be valid JSON');
  const parsed = parseSubmitBody(body.value);
  if (!parsed.ok) return apiError(c, parsed.status, parsed.code, parsed.message);
  context.submitLimiter.record(now);
  const requestId = newRequestId();
  const plan = context.plans.shift();
  const speed = context.config.speed;
  const record = createTaskRecord({ request: parsed.request, plan, submittedAt: now, requestId, speed });
  context.account.add(record);
  context.created.tasks += 1;
  return c.json({ output: { task_status: 'PENDING', task_id: record.taskId }, request_id: requestId });
}

function query(c: Context, context: EmulatorContext): Response {
  const now = settledNow(context);
  const taskId = c.req.param('task_id') ?? '';
  const record = context.account.get(taskId);
  if (!record) return c.json(unknownTaskBody(taskId));
  const origin = publicOrigin(c, context);
  return c.json(taskQueryBody(record, now, (task, index) => resultUrlFor(context, origin, task, index)));
}

function cancel(c: Context, context: EmulatorContext): Response {
  const now = settledNow(context);
  if (!context.account.cancel(c.req.param('task_id') ?? '', now)) {
    return apiError(c, 400, 'UnsupportedOperation', CANCEL_REFUSED);
  }
  return c.json({ request_id: newRequestId() });
}

function list(c: Context, context: EmulatorContext): Response {
  const now = settledNow(context);
  const parsed = parseListQuery(c.req.query(), now);
  if (!parsed.ok) return apiError(c, 400, 'InvalidParameter', parsed.message);
  const { fromMs, untilMs, modelName, status, pageNo, pageSize } = parsed.query;
  const matching = context.account
    .all()
    .filter((record) => record.submittedAt >= fromMs && record.submittedAt < untilMs)
    .filter((record) => modelName === undefined || record.request.model === modelName)
    .filter((record) => status === undefined || statusAt(record, now) === status)
    .reverse();
  const page = matching.slice((pageNo - 1) * pageSize, pageNo * pageSize);
  return c.json({
    request_id: newRequestId(),
    data: page.map((record) => taskListEntry(record, now)),
    total: matching.length,
    total_page: Math.ceil(matching.length / pageSize),
    page_no: pageNo,
    page_size: pageSize,
  });
}

/** An answer that ends the call at once, or the connection fault to apply once it is handled. */
type Admission =
  | { readonly refused: Response }
  | { readonly after?: Extract<ConnectionFault, { kind: 'lost-response' | 'slow' }> };

/** Authentication, then the call count, then any injected fault: the order every op shares. */
function admit(c: Context, context: EmulatorContext, op: EmulatorOp): Admission {
  context.calls[op] += 1;
  if (!hasValidKey(c, context.config.apiKey)) return { refused: apiError(c, 401, 'InvalidApiKey') };
  if (op === 'submit') context.counts.submits += 1;
  else context.counts.queries += 1;
  const fault = context.faults.take(op);
  if (!fault) return {};
  if (!('kind' in fault)) return { refused: apiError(c, fault.status, fault.code, fault.message) };
  // In-process, where there is no connection to reset, the caller sees this 500 instead.
  if (fault.kind === 'reset') return { refused: resetConnection(apiError(c, 500, 'InternalError')) };
  return { after: fault };
}

/** {@link admit} plus the account-wide budget shared by query, cancel and list. */
function admitTasksApi(c: Context, context: EmulatorContext, op: EmulatorOp): Admission {
  const admission = admit(c, context, op);
  if ('refused' in admission) return admission;
  if (!context.queryLimiter.tryAcquire(context.config.clock.now())) return { refused: throttled(c, context) };
  return admission;
}

function hasValidKey(c: Context, apiKey: string): boolean {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(c.req.header('Authorization') ?? '');
  return match?.[1] === apiKey;
}

function throttled(c: Context, context: EmulatorContext): Response {
  context.counts.throttled += 1;
  return apiError(c, 429, 'Throttling.RateQuota');
}

function apiError(c: Context, status: number, code: string, message?: string): Response {
  return c.json(apiErrorBody(code, message), status as ContentfulStatusCode);
}

function parseJson(text: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false };
  }
}

/** The configured origin for result URLs, else the origin the client reached us on. */
function publicOrigin(c: Context, context: EmulatorContext): string {
  const configured = context.config.publicOrigin;
  const origin = typeof configured === 'function' ? configured() : configured;
  return origin || new URL(c.req.url).origin;
}
