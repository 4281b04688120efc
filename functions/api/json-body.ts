import type { Context, MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { HttpError } from './http-error.js';
import { MAX_BODY_BYTES } from './schemas.js';

/** Decodes UTF-8 and throws on any byte sequence that is not, instead of writing U+FFFD. */
const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true });

/** Refuses a body over {@link MAX_BODY_BYTES} with a 413, from its Content-Length when it has one. */
export const jsonBodyLimit = (): MiddlewareHandler =>
  bodyLimit({
    maxSize: MAX_BODY_BYTES,
    onError: () => {
      throw new HttpError(413, 'payload_too_large', `The request body is over ${MAX_BODY_BYTES} bytes`);
    },
  });

/**
 * The request's body as JSON: a 415 unless it is sent as application/json (any charset parameter
 * aside), a 400 naming `(body)` for bytes that are not UTF-8 or text that is not JSON.
 */
export async function readJsonBody(c: Context): Promise<unknown> {
  const contentType = c.req.header('content-type') ?? '';
  if (!/^application\/json\s*(;|$)/i.test(contentType)) {
    throw new HttpError(415, 'unsupported_media_type', 'Send the request body as application/json');
  }
  let text: string;
  try {
    // JSON is UTF-8 (RFC 8259): a lenient decode would turn other bytes into U+FFFD unseen.
    text = STRICT_UTF8.decode(await c.req.arrayBuffer());
  } catch {
    throw bodyRefused('The request body is not valid UTF-8', 'is not valid UTF-8');
  }
  try {
    return JSON.parse(text);
  } catch {
    throw bodyRefused('The request body is not valid JSON', 'is not valid JSON');
  }
}

const bodyRefused = (message: string, why: string) =>
  new HttpError(400, 'invalid_request', message, { details: [{ field: '(body)', message: why }] });
