import { setTimeout as sleep } from 'node:timers/promises';
import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { resetConnection, truncateConnection } from './connection.js';
import { type EmulatorContext, settledNow } from './context.js';
import { defaultMessage, newOssRequestId, ossErrorXml } from './errors.js';
import { renderPng } from './png.js';
import { imageSucceeds, runEndOf, statusAt, type TaskRecord } from './task-record.js';
import type { DownloadFault } from './types.js';

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
  const imageOrigin = record.resultOrigins.get(index) ?? origin;
  return context.signer.url(imageOrigin, resultPath(record.taskId, record.files[index] ?? ''), expires);
}

function resultPath(taskId: string, file: string): string {
  return `${RESULTS_PREFIX}/${encodeURIComponent(taskId)}/${encodeURIComponent(file)}`;
}

/**
 * `GET /results/:task_id/:file`: answers like OSS does for a pre-signed URL. Refusals are 403
 * `AccessDenied` XML (expired first, as OSS checks, then a signature that does not match); a
 * valid URL to an image that does not exist is 404 `NoSuchKey`. A fault injected for the
 * `download` op acts before those checks; a task's scripted per-image faults after them.
 */
export async function downloadResult(c: Context, context: EmulatorContext): Promise<Response> {
  context.calls.download += 1;
  const fault = context.faults.take('download');
  if (!fault) return checkedDownload(c, context);
  if (!('kind' in fault)) return ossError(c, fault.status, fault.code, fault.message);
  if (fault.kind === 'reset') return resetConnection(ossError(c, 500, 'InternalError'));
  const response = await checkedDownload(c, context);
  if (fault.kind === 'slow') await sleep(fault.delayMs, undefined, { ref: false });
  return fault.kind === 'lost-response' ? resetConnection(response) : response;
}

async function checkedDownload(c: Context, context: EmulatorContext): Promise<Response> {
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

async function imageResponse(
  c: Context,
  context: EmulatorContext,
  taskId: string,
  file: string,
  now: number,
): Promise<Response> {
  const record = context.account.get(taskId);
  const index = record ? record.files.indexOf(file) : -1;
  if (!record || index < 0 || statusAt(record, now) !== 'SUCCEEDED' || !imageSucceeds(record, index)) {
    return ossError(c, 404, 'NoSuchKey', 'The specified key does not exist.');
  }
  // Taken before rendering, so concurrent downloads take a task's scripted faults in arrival order.
  const fault = record.downloadFaults.get(index)?.shift();
  const { prompt, seed, width, height } = record.request;
  // Image i of a batch uses seed + i, as the service documents.
  const png = await context.images.getOrRender(`${taskId}/${index}`, () =>
    renderPng(prompt, seed + index, width, height),
  );
  return fault ? faultyImageResponse(c, png, fault) : imageBytesResponse(png, 'image/png');
}

function imageBytesResponse(bytes: Uint8Array, contentType: string, declareLength = true): Response {
  const headers: Record<string, string> = {
    'content-type': contentType,
    'x-oss-request-id': newOssRequestId(),
  };
  if (declareLength) {
    headers['content-length'] = String(bytes.length);
    return new Response(new Uint8Array(bytes), { status: 200, headers });
  }
  // A stream body has no known length: the server answers it chunked.
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(new Uint8Array(bytes));
      controller.close();
    },
  });
  return new Response(body, { status: 200, headers });
}

/** A scripted download of one image: see {@link DownloadFault}. */
function faultyImageResponse(c: Context, png: Buffer, fault: DownloadFault): Response {
  if (!('kind' in fault)) return ossError(c, fault.status, fault.code, fault.message);
  switch (fault.kind) {
    case 'reset':
      return resetConnection(ossError(c, 500, 'InternalError'));
    case 'truncate':
      return truncateConnection(
        imageBytesResponse(png, 'image/png'),
        fault.afterBytes ?? Math.floor(png.length / 2),
      );
    case 'serve':
      return imageBytesResponse(Buffer.from(fault.body), fault.contentType);
    case 'oversize': {
      // Trailing bytes after IEND: still a PNG to a decoder, only bigger.
      const padded = Buffer.concat([png, Buffer.alloc(Math.max(0, fault.bytes - png.length))]);
      return imageBytesResponse(padded, 'image/png', fault.declareLength ?? true);
    }
    case 'trickle':
      return trickledResponse(png, fault.bytesPerSecond);
  }
}

/** The whole image announced in the headers, its body sent a small chunk every 100 ms. */
function trickledResponse(bytes: Buffer, bytesPerSecond: number): Response {
  const chunkBytes = Math.max(1, Math.round(bytesPerSecond / 10));
  let offset = 0;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      await sleep(100, undefined, { ref: false });
      controller.enqueue(new Uint8Array(bytes.subarray(offset, offset + chunkBytes)));
      offset += chunkBytes;
      if (offset >= bytes.length) controller.close();
    },
  });
  const headers = {
    'content-type': 'image/png',
    'content-length': String(bytes.length),
    'x-oss-request-id': newOssRequestId(),
  };
  return new Response(body, { status: 200, headers });
}

function ossError(c: Context, status: number, code: string, message = defaultMessage(code)): Response {
  const requestId = newOssRequestId();
  const body = ossErrorXml(code, message, requestId, new URL(c.req.url).host);
  return c.body(body, status as ContentfulStatusCode, {
    'content-type': 'application/xml',
    'x-oss-request-id': requestId,
  });
}
