import { z } from 'zod';
import { parseCompactCstTime } from './cst-time.js';

const DAY_MS = 24 * 60 * 60 * 1000;

/** Statuses the list API filters on. */
const LIST_STATUSES = ['PENDING', 'RUNNING', 'SUSPENDED', 'SUCCEEDED', 'FAILED', 'CANCELED'] as const;

/** A validated list request: a creation-time window `[fromMs, untilMs)` plus filters and page. */
export interface ListQuery {
  fromMs: number;
  untilMs: number;
  modelName: string | undefined;
  status: (typeof LIST_STATUSES)[number] | undefined;
  pageNo: number;
  pageSize: number;
}

/** A parsed list request, or the InvalidParameter message naming the bad field. */
export type ListQueryResult = { ok: true; query: ListQuery } | { ok: false; message: string };

function compactTime(field: string) {
  const error = `${field} must be a time formatted YYYYMMDDhhmmss`;
  return z
    .string()
    .refine((text) => parseCompactCstTime(text) !== undefined, { error })
    .transform((text) => parseCompactCstTime(text) ?? Number.NaN);
}

function pageNumber(field: string, max: number) {
  const error = `${field} must be an integer between 1 and ${max}`;
  return z.coerce.number({ error }).int({ error }).min(1, { error }).max(max, { error });
}

const querySchema = z.object({
  start_time: compactTime('start_time').optional(),
  end_time: compactTime('end_time').optional(),
  model_name: z.string().optional(),
  status: z.enum(LIST_STATUSES, { error: `status must be one of ${LIST_STATUSES.join(', ')}` }).optional(),
  page_no: pageNumber('page_no', Number.MAX_SAFE_INTEGER).default(1),
  page_size: pageNumber('page_size', 100).default(10),
});

/**
 * Parses the list API's query. Times are CST seconds; `end_time` covers its whole second. Without
 * `end_time` the window ends now, without `start_time` it starts 24 h before its end, and a window
 * over 24 h is refused, as the service does.
 */
export function parseListQuery(params: Record<string, string>, now: number): ListQueryResult {
  const parsed = querySchema.safeParse(params);
  if (!parsed.success) return { ok: false, message: parsed.error.issues[0]?.message ?? 'invalid query' };
  const { start_time, end_time, model_name, status, page_no, page_size } = parsed.data;
  const untilMs = end_time === undefined ? now + 1 : end_time + 1000;
  const fromMs = start_time ?? untilMs - DAY_MS;
  if (fromMs >= untilMs) return { ok: false, message: 'start_time must not be later than end_time' };
  if (untilMs - fromMs > DAY_MS + 1000) {
    return { ok: false, message: 'the window from start_time to end_time must not exceed 24 hours' };
  }
  return {
    ok: true,
    query: { fromMs, untilMs, modelName: model_name, status, pageNo: page_no, pageSize: page_size },
  };
}
