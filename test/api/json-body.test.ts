import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { useJsonErrors } from '../../functions/api/api-errors.js';
import { jsonBodyLimit, readJsonBody } from '../../functions/api/json-body.js';
import { MAX_BODY_BYTES } from '../../functions/api/schemas.js';
import { silentLogger } from '../../functions/shared/logger.js';

/** A route that answers the JSON body it read. */
function setup() {
  const app = new Hono();
  useJsonErrors(app, silentLogger);
  app.post('/echo', jsonBodyLimit(), async (c) => c.json({ read: await readJsonBody(c) }));
  return app;
}

const send = (
  body: string | Uint8Array,
  headers: Record<string, string> = { 'content-type': 'application/json' },
) => setup().request('/echo', { method: 'POST', headers, body });

const errorOf = async (response: Response) =>
  ((await response.json()) as { error: { type: string; message: string; details?: unknown } }).error;

describe('reading a JSON body', () => {
  it.each(['application/json', 'application/json; charset=utf-8', 'Application/JSON ;charset=UTF-8'])(
    'reads a body sent as %s',
    async (contentType) => {
      const response = await send('{"prompt":"a fox"}', { 'content-type': contentType });

      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({ read: { prompt: 'a fox' } });
    },
  );

  it.each([undefined, 'text/plain', 'application/jsonp', 'application/x-www-form-urlencoded'])(
    'answers 415 for a body sent as %s',
    async (contentType) => {
      const response = await send('{}', contentType ? { 'content-type': contentType } : {});

      expect(response.status).toBe(415);
      expect(await errorOf(response)).toEqual({
        type: 'unsupported_media_type',
        message: 'Send the request body as application/json',
      });
    },
  );

  it('answers 400 naming (body) for bytes that are not UTF-8', async () => {
    const response = await send(new Uint8Array([0x7b, 0x22, 0xff, 0x22, 0x7d]));

    expect(response.status).toBe(400);
    expect(await errorOf(response)).toEqual({
      type: 'invalid_request',
      message: 'The request body is not valid UTF-8',
      details: [{ field: '(body)', message: 'is not valid UTF-8' }],
    });
  });

  it('answers 400 naming (body) for text that is not JSON', async () => {
    const response = await send('{"prompt":');

    expect(response.status).toBe(400);
    expect(await errorOf(response)).toEqual({
      type: 'invalid_request',
      message: 'The request body is not valid JSON',
      details: [{ field: '(body)', message: 'is not valid JSON' }],
    });
  });

  it('answers 413 for a body over the limit, and reads one of exactly the limit', async () => {
    const fits = JSON.stringify({ prompt: 'x'.repeat(MAX_BODY_BYTES - 13) });

    const over = await send(`${fits} `);
    const exact = await send(fits);

    expect(fits).toHaveLength(MAX_BODY_BYTES);
    expect(over.status).toBe(413);
    expect(await errorOf(over)).toEqual({
      type: 'payload_too_large',
      message: `The request body is over ${MAX_BODY_BYTES} bytes`,
    });
    expect(exact.status).toBe(200);
  });
});
