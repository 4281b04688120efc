import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { type EmulatorContext, settledNow } from './context.js';
import { defaultMessage, newOssRequestId, ossErrorXml } from './errors.js';
import { renderPng } from './png.js';
import { imageSucceeds, runEndOf, statusAt, type TaskRecord } from './task-record.js';

/** Path prefix of result images, outside `/api/v1` as OSS is a different host in production. */
export const RESULTS_PREFIX = '/results';

/** The pre-signed URL of image `index` of a finished task; it expires with the task record. */
export function resultUrlFor(
  context: EmulatorContext,
  origin: string,
  record: TaskRecord,
  index: number,
): string {
  const end = runEndOf(record) ?? record.submittedAt;
  const expires = Math.floor((end + context.config.resultTtlMs) / 1000);
  return context.signer.url(origin, resultPath(record.taskId, record.files[index] ?? ''), expires);
}

function resultPath(taskId: string, file: string): string {
  return `${RESULTS_PREFIX}/${encodeURIComponent(taskId)}/${encodeURIComponent(file)}`;
}

/**
 * `GET /results/:task_id/:file`: answers like OSS does for a pre-signed URL. Refusals are 403
 * `AccessDenied` XML (expired first, as OSS checks, then a signature that does not match); a
 * valid URL to an image that does not exist is 404 `NoSuchKey`.
 */
export function downloadResult(c: Context, context: EmulatorContext): Response {
  const fault = context.faults.take('download');
  if (fault) return ossError(c, fault.status, fault.code, fault.message ?? defaultMessage(fault.code));
  const taskId = c.req.param('task_id') ?? '';
  const file = c.req.param('file') ?? '';
  const { Expires: expires, OSSAccessKeyId: accessKeyId, Signature: signature } = c.req.query();
  if (!expires || !accessKeyId || !signature) {
    return ossError(c, 403, 'AccessDenied', 'You have no right to access this object because of bucket acl.');
  }
  const now = settledNow(context);
  // Valid strictly before Expires, so a URL never outlives the task record it points into.
  if (!(now < Number(expires) * 1000)) return ossError(c, 403, 'AccessDenied', 'Request has expired.');
  if (!context.signer.verify(resultPath(taskId, file), expires, accessKeyId, signature)) {
    return ossError(
      c,
      403,
      'AccessDenied',
      'The request signature we calculated does not match the signature you provided.',
    );
  }
  return imageResponse(c, context, taskId, file, now);
}

function imageResponse(
  c: Context,
  context: EmulatorContext,
  taskId: string,
  file: string,
  now: number,
): Response {
  const record = context.account.get(taskId);
  const index = record ? record.files.indexOf(file) : -1;
  if (!record || index < 0 || statusAt(record, now) !== 'SUCCEEDED' || !imageSucceeds(record, index)) {
    return ossError(c, 404, 'NoSuchKey', 'The specified key does not exist.');
  }
  const { prompt, seed, width, height } = record.request;
  // Image i of a batch uses seed + i, as the service documents.
  const png = context.images.getOrRender(`${taskId}/${index}`, () =>
    renderPng(prompt, seed + index, width, height),
  );
  return new Response(new Uint8Array(png), {
    status: 200,
    headers: {
      'content-type': 'image/png',
      'content-length': String(png.length),
      'x-oss-request-id': newOssRequestId(),
    },
  });
}

function ossError(c: Context, status: number, code: string, message: string): Response {
  const requestId = newOssRequestId();
  const body = ossErrorXml(code, message, requestId, new URL(c.req.url).host);
  return c.body(body, status as ContentfulStatusCode, {
    'content-type': 'application/xml',
    'x-oss-request-id': requestId,
  });
}
