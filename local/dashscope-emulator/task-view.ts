import { formatCstTime } from './cst-time.js';
import { newRequestId } from './errors.js';
import {
  endTimeAt,
  IMAGE_TIMEOUT,
  imageSucceeds,
  metricsAt,
  statusAt,
  type TaskRecord,
  taskFailure,
} from './task-record.js';

/** Builds the pre-signed download URL of image `index` of a finished task. */
export type ResultUrlFor = (record: TaskRecord, index: number) => string;

/** One entry of `output.results`: a URL, or the error of a failed image. */
type ResultEntry = { url: string } | { code: string; message: string };

/** Answer of `GET /tasks/{id}` for a task that does not exist or has expired. */
export function unknownTaskBody(taskId: string) {
  return { request_id: newRequestId(), output: { task_id: taskId, task_status: 'UNKNOWN' } };
}

/**
 * Answer of `GET /tasks/{id}`, shaped like the seed document's examples: times once they exist,
 * `task_metrics` from RUNNING on, `results` and `usage` on success, `code`/`message` on failure.
 */
export function taskQueryBody(record: TaskRecord, now: number, urlFor: ResultUrlFor) {
  const status = statusAt(record, now);
  const output: Record<string, unknown> = {
    task_id: record.taskId,
    task_status: status,
    submit_time: formatCstTime(record.submittedAt),
  };
  if (record.scheduledAt !== undefined) output.scheduled_time = formatCstTime(record.scheduledAt);
  const end = endTimeAt(record, now);
  if (end !== undefined) output.end_time = formatCstTime(end);
  const failure = status === 'FAILED' ? taskFailure(record) : undefined;
  if (failure) Object.assign(output, { code: failure.code, message: failure.message });
  if (status === 'SUCCEEDED') {
    output.results = record.files
      .map((_, i) => resultEntry(record, i, urlFor))
      .filter((_, i) => !record.omitResults.has(i));
  }
  const ran = status === 'RUNNING' || status === 'SUCCEEDED' || status === 'FAILED';
  const metrics = ran ? metricsAt(record, now) : undefined;
  if (metrics) output.task_metrics = metrics;
  const body: Record<string, unknown> = { request_id: newRequestId(), output };
  if (status === 'SUCCEEDED' && metrics) body.usage = { image_count: metrics.SUCCEEDED };
  return body;
}

function resultEntry(record: TaskRecord, index: number, urlFor: ResultUrlFor): ResultEntry {
  return imageSucceeds(record, index) ? { url: urlFor(record, index) } : { ...IMAGE_TIMEOUT };
}

/** One entry of the list API's `data`; its times are epoch ms, as the list API answers them. */
export function taskListEntry(record: TaskRecord, now: number) {
  const end = endTimeAt(record, now);
  return {
    task_id: record.taskId,
    status: statusAt(record, now),
    model_name: record.request.model,
    gmt_create: record.submittedAt,
    ...(record.scheduledAt === undefined ? {} : { start_time: record.scheduledAt }),
    ...(end === undefined ? {} : { end_time: end }),
    request_id: record.requestId,
  };
}
