import { describe, expect, it } from 'vitest';
import type { ApiOptions } from '../../functions/api/app.js';
import type { Clock } from '../../functions/shared/clock.js';
import { LOCAL_WEBHOOK_POLICY } from '../../functions/shared/webhook-url.js';
import { MemoryGenerationIndex } from '../fakes/memory-index.js';
import { FakeExecutionService } from './fake-executions.js';
import { apiOver } from './fixtures.js';

const clock: Clock = { now: () => Date.parse('2026-03-01T12:34:56.789Z') };

function setup(options: ApiOptions = {}) {
  const index = new MemoryGenerationIndex();
  const executions = new FakeExecutionService(clock, index);
  return { app: apiOver({ executions, index }, clock, options), executions };
}

/** Posts raw JSON text, so escapes such as `\u0000` and `\ud800` reach the parser as sent. */
const postText = (app: ReturnType<typeof setup>['app'], text: string) =>
  app.request('/v1/generations', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: text,
  });

interface ErrorJson {
  error: { type: string; message: string; details?: { field: string; message: string }[] };
}

describe('POST /v1/generations: webhook_url the deployed notifier would refuse', () => {
  it.each([
    ['http://hooks.example.com/x', /https only/],
    ['https://10.0.0.7/x', /not public/],
    ['https://127.0.0.1/x', /not public/],
    ['https://[::1]/x', /not public/],
    ['https://169.254.169.254/latest/meta-data', /not public/],
    ['https://[64:ff9b::a9fe:a9fe]/x', /not public/],
    ['https://[2002:a9fe:a9fe::]/x', /not public/],
    ['https://[::127.0.0.1]/x', /not public/],
    ['https://[fec0::1]/x', /not public/],
    ['https://localhost:8443/x', /local name/],
    ['https://user:secret@hooks.example.com/x', /credentials/],
  ])('answers 400 naming webhook_url for %s', async (url, reason) => {
    const { app } = setup();

    const response = await postText(app, JSON.stringify({ prompt: 'a fox', webhook_url: url }));

    expect(response.status).toBe(400);
    const { error } = (await response.json()) as ErrorJson;
    expect(error.details?.map((d) => d.field)).toEqual(['webhook_url']);
    expect(error.details?.[0]?.message).toMatch(reason);
  });

  it('starts nothing for a refused webhook_url', async () => {
    const { app, executions } = setup();

    await postText(app, JSON.stringify({ prompt: 'a fox', webhook_url: 'http://127.0.0.1/x' }));

    expect(executions.calls.start).toEqual([]);
  });

  it('accepts an https webhook_url on a public name', async () => {
    const { app } = setup();

    const response = await postText(
      app,
      JSON.stringify({ prompt: 'a fox', webhook_url: 'https://hooks.example.com/x' }),
    );

    expect(response.status).toBe(202);
  });

  it('accepts http to loopback under the local policy', async () => {
    const { app } = setup({ webhookPolicy: LOCAL_WEBHOOK_POLICY });

    const response = await postText(
      app,
      JSON.stringify({ prompt: 'a fox', webhook_url: 'http://127.0.0.1:9000/x' }),
    );

    expect(response.status).toBe(202);
  });
});

describe('POST /v1/generations: malformed text', () => {
  it.each([
    ['prompt', 'NUL', '"a\\u0000b"', /NUL/],
    ['prompt', 'lone high surrogate', '"a\\ud800b"', /lone surrogate/],
    ['prompt', 'lone low surrogate', '"\\udfffab"', /lone surrogate/],
    ['negative_prompt', 'NUL', '"blur\\u0000"', /NUL/],
    ['negative_prompt', 'lone surrogate', '"blur\\ud83d"', /lone surrogate/],
    ['init_image', 'NUL', '"https://img.example/a\\u0000.png"', /NUL/],
    ['webhook_url', 'lone surrogate', '"https://hooks.example.com/\\ud800"', /lone surrogate/],
    ['prompt', 'replacement character', '"caf\\ufffd"', /U\+FFFD/],
  ])('answers 400 naming %s for a %s', async (field, _label, json, reason) => {
    const { app, executions } = setup();
    const body = field === 'prompt' ? `{"prompt": ${json}}` : `{"prompt": "a fox", "${field}": ${json}}`;

    const response = await postText(app, body);

    expect(response.status).toBe(400);
    const { error } = (await response.json()) as ErrorJson;
    expect(error.details?.find((d) => d.field === field)?.message).toMatch(reason);
    expect(executions.calls.start).toEqual([]);
  });
});

describe('GET /v1/generations: malformed text', () => {
  it('answers 400 naming cursor for a NUL in it', async () => {
    const { app } = setup();

    const response = await app.request('/v1/generations?cursor=abc%00def');

    expect(response.status).toBe(400);
    const { error } = (await response.json()) as ErrorJson;
    expect(error.details).toEqual([
      { field: 'cursor', message: 'must not contain a NUL character (U+0000)' },
    ]);
  });
});

describe('401', () => {
  it('carries a WWW-Authenticate challenge', async () => {
    const { app } = setup({ apiToken: 'local-token-123' });

    const response = await app.request('/v1/generations');

    expect(response.status).toBe(401);
    expect(response.headers.get('WWW-Authenticate')).toBe('Bearer realm="sd35"');
  });

  it('carries the challenge for a wrong token too', async () => {
    const { app } = setup({ apiToken: 'local-token-123' });

    const response = await app.request('/v1/generations', { headers: { Authorization: 'Bearer nope' } });

    expect(response.headers.get('WWW-Authenticate')).toMatch(/^Bearer /);
  });
});
