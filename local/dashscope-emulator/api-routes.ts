import { type Context, Hono } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { type EmulatorContext, settledNow } from './context.js';
import { apiErrorBody, newRequestId } from './errors.js';
import { parseListQuery } from './list-query.js';
import { createTaskRecord } from './new-task.js';
import { resultUrlFor } from './result-download.js';
import { parseSubmitBody } from './submit-request.js';
import { statusAt } from './task-record.js';
import { taskListEntry, taskQueryBody, unknownTaskBody } from './task-view.js';
import type { EmulatorOp } from './types.js';

const CANCEL_REFUSED = 'Failed to cancel the task, please confirm if the task status is PENDING.';

/** The DashScope API routes, to be mounted under `/api/v1`. */
export function createApiRoutes(context: EmulatorContext): Hono {
  const api = new Hono();
  api.post('/services/aigc/text2image/image-synthesis', (c) => submit(c, context));
  api.get('/tasks', (c) => list(c, context));
  api.get('/tasks/:task_id', (c) => query(c, context));
  api.post('/tasks/:task_id/cancel', (c) => cancel(c, context));
  return api;
}

async function submit(c: Context, context: EmulatorContext): Promise<Response> {
  const refused = admit(c, context, 'submit');
  if (refused) return refused;
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
  return c.json({ output: { task_status: 'PENDING', task_id: record.taskId }, request_id: requestId });
}

function query(c: Context, context: EmulatorContext): Response {
  const refused = admitTasksApi(c, context, 'get');
  if (refused) return refused;
  const now = settledNow(context);
  const taskId = c.req.param('task_id') ?? '';
  const record = context.account.get(taskId);
  if (!record) return c.json(unknownTaskBody(taskId));
  const origin = publicOrigin(c, context);
  return c.json(taskQueryBody(record, now, (task, index) => resultUrlFor(context, origin, task, index)));
}

function cancel(c: Context, context: EmulatorContext): Response {
  const refused = admitTasksApi(c, context, 'cancel');
  if (refused) return refused;
  const now = settledNow(context);
  if (!context.account.cancel(c.req.param('task_id') ?? '', now)) {
    return apiError(c, 400, 'UnsupportedOperation', CANCEL_REFUSED);
  }
  return c.json({ request_id: newRequestId() });
}

function list(c: Context, context: EmulatorContext): Response {
  const refused = admitTasksApi(c, context, 'list');
  if (refused) return refused;
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

/** Authentication, then the call count, then any injected fault: the order every op shares. */
function admit(c: Context, context: EmulatorContext, op: EmulatorOp): Response | undefined {
  if (!hasValidKey(c, context.config.apiKey)) return apiError(c, 401, 'InvalidApiKey');
  if (op === 'submit') context.counts.submits += 1;
  else context.counts.queries += 1;
  const fault = context.faults.take(op);
  if (fault) return apiError(c, fault.status, fault.code, fault.message);
  return undefined;
}

/** {@link admit} plus the account-wide budget shared by query, cancel and list. */
function admitTasksApi(c: Context, context: EmulatorContext, op: EmulatorOp): Response | undefined {
  const refused = admit(c, context, op);
  if (refused) return refused;
  if (!context.queryLimiter.tryAcquire(context.config.clock.now())) return throttled(c, context);
  return undefined;
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
