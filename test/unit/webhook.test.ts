import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { checkWebhookUrl, deliverWebhook, isPublicAddress, redact } from '../../functions/notify/webhook.js';
import { closeServer, listenOnLoopback } from '../support/loopback.js';

/**
 * An independent Standard Webhooks verifier, written from the specification (not by calling the
 * signer): the signed content is `${webhook-id}.${webhook-timestamp}.${body}`, the key is the
 * base64 part of a `whsec_` secret, and `webhook-signature` holds space-separated `v1,<base64>`.
 */
function verify(
  secret: string,
  headers: IncomingMessage['headers'],
  body: string,
  nowSeconds: number,
): boolean {
  const id = String(headers['webhook-id'] ?? '');
  const timestamp = String(headers['webhook-timestamp'] ?? '');
  const signatures = String(headers['webhook-signature'] ?? '').split(' ');
  if (!id || !/^\d+$/.test(timestamp) || Math.abs(nowSeconds - Number(timestamp)) > 300) return false;
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const expected = createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest();
  return signatures.some((entry) => {
    const [version, value] = entry.split(',');
    const given = Buffer.from(value ?? '', 'base64');
    return version === 'v1' && given.length === expected.length && timingSafeEqual(given, expected);
  });
}

const SECRET = `whsec_${Buffer.from('a-test-secret-of-enough-length!!').toString('base64')}`;
const local = { allowHttp: true, allowPrivateAddresses: true };
const fast = { attempts: 3, firstBackoffMs: 5, timeoutMs: 2000, webhookId: 'msg_test-message' };

let server: Server | undefined;
afterEach(async () => {
  await closeServer(server);
  server = undefined;
});

/** A receiver answering each request with the next status of `statuses` (the last one repeats). */
async function receiver(statuses: number[], headers: Record<string, string> = {}) {
  const received: Array<{ headers: IncomingMessage['headers']; body: string }> = [];
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => {
      body += chunk;
    });
    req.on('end', () => {
      received.push({ headers: req.headers, body });
      res.writeHead(statuses[Math.min(received.length - 1, statuses.length - 1)] ?? 200, headers).end();
    });
  });
  return { url: `${await listenOnLoopback(server)}/hook?token=abc`, received };
}

describe('deliverWebhook', () => {
  it('sends a payload whose Standard Webhooks signature an independent verifier accepts', async () => {
    const { url, received } = await receiver([204]);

    const record = await deliverWebhook(
      url,
      'generation.succeeded',
      { id: 'gen-1' },
      { secret: SECRET, policy: local, ...fast },
    );

    expect(record.delivered).toBe(true);
    const [request] = received;
    expect(verify(SECRET, request?.headers ?? {}, request?.body ?? '', Math.floor(Date.now() / 1000))).toBe(
      true,
    );
    expect(JSON.parse(request?.body ?? '{}')).toMatchObject({
      type: 'generation.succeeded',
      data: { id: 'gen-1' },
    });
    expect(request?.headers['webhook-id']).toBe(record.webhookId);
  });

  it('sends the webhook-id it is given, so a repeated delivery carries the same one', async () => {
    const { url, received } = await receiver([200]);
    const options = { secret: SECRET, policy: local, ...fast, webhookId: 'msg_same-outcome' };

    await deliverWebhook(url, 'generation.succeeded', { id: 'gen-1' }, options);
    await deliverWebhook(url, 'generation.succeeded', { id: 'gen-1' }, options);

    expect(received.map((request) => request.headers['webhook-id'])).toEqual([
      'msg_same-outcome',
      'msg_same-outcome',
    ]);
  });

  it('is rejected by the verifier when the body is altered', async () => {
    const { url, received } = await receiver([200]);

    await deliverWebhook(
      url,
      'generation.failed',
      { id: 'gen-2' },
      { secret: SECRET, policy: local, ...fast },
    );

    const [request] = received;
    expect(verify(SECRET, request?.headers ?? {}, `${request?.body} `, Math.floor(Date.now() / 1000))).toBe(
      false,
    );
  });

  it('retries after a 500 and then succeeds, with the same webhook-id', async () => {
    const { url, received } = await receiver([500, 200]);

    const record = await deliverWebhook(
      url,
      'generation.succeeded',
      {},
      { secret: SECRET, policy: local, ...fast },
    );

    expect(record.delivered).toBe(true);
    expect(record.attempts.map((a) => a.status)).toEqual([500, 200]);
    expect(received[0]?.headers['webhook-id']).toBe(received[1]?.headers['webhook-id']);
  });

  it('gives up after the bounded number of tries', async () => {
    const { url, received } = await receiver([503]);

    const record = await deliverWebhook(
      url,
      'generation.succeeded',
      {},
      { secret: SECRET, policy: local, ...fast },
    );

    expect(record.delivered).toBe(false);
    expect(received).toHaveLength(3);
  });

  it('never follows a redirect', async () => {
    const { url, received } = await receiver([302], { location: 'http://127.0.0.1:1/elsewhere' });

    const record = await deliverWebhook(
      url,
      'generation.succeeded',
      {},
      { secret: SECRET, policy: local, ...fast },
    );

    expect(record.delivered).toBe(false);
    expect(received).toHaveLength(1);
    expect(record.attempts[0]).toMatchObject({ status: 302, error: 'redirect refused' });
  });

  it('does not retry a 4xx answer', async () => {
    const { url, received } = await receiver([410]);

    const record = await deliverWebhook(
      url,
      'generation.succeeded',
      {},
      { secret: SECRET, policy: local, ...fast },
    );

    expect(record.delivered).toBe(false);
    expect(received).toHaveLength(1);
  });

  it('refuses a loopback receiver when deployed, without connecting', async () => {
    const { url, received } = await receiver([200]);

    const record = await deliverWebhook(
      url.replace('http:', 'https:'),
      'generation.succeeded',
      {},
      { secret: SECRET, policy: {}, ...fast },
    );

    expect(record.delivered).toBe(false);
    expect(record.attempts[0]?.error).toMatch(/not public/);
    expect(received).toHaveLength(0);
  });

  it('refuses a public name that resolves to a private address, at connect time', async () => {
    const lookup = ((
      _host: string,
      _options: unknown,
      callback: (e: null, a: Array<{ address: string; family: number }>) => void,
    ) => callback(null, [{ address: '10.0.0.7', family: 4 }])) as never;

    const record = await deliverWebhook(
      'https://hooks.example.com/x',
      'generation.succeeded',
      {},
      {
        secret: SECRET,
        policy: {},
        lookup,
        ...fast,
      },
    );

    expect(record.delivered).toBe(false);
    expect(record.attempts[0]?.error).toMatch(/resolves to 10\.0\.0\.7, which is not public/);
  });

  it('keeps tokens in the query out of the record', async () => {
    const { url } = await receiver([200]);

    const record = await deliverWebhook(
      url,
      'generation.succeeded',
      {},
      { secret: SECRET, policy: local, ...fast },
    );

    expect(record.url).not.toContain('token');
    expect(redact('https://u:p@h.example.com/a?b=c')).toBe('https://h.example.com/a');
  });
});

describe('checkWebhookUrl', () => {
  it('refuses plain http when deployed', () => {
    expect(() => checkWebhookUrl('http://hooks.example.com/x', {})).toThrow(/https only/);
  });

  it.each([
    'https://127.0.0.1/x',
    'https://169.254.169.254/latest',
    'https://[::1]/x',
    'https://192.168.1.2/x',
  ])('refuses the non-public literal %s when deployed', (url) => {
    expect(() => checkWebhookUrl(url, {})).toThrow(/not public/);
  });

  it.each([
    'https://[64:ff9b::a9fe:a9fe]/x',
    'https://[2002:a9fe:a9fe::]/x',
    'https://[::127.0.0.1]/x',
    'https://[fec0::1]/x',
    'https://[::ffff:7f00:1]/x',
    'https://0x7f000001/x',
  ])('refuses %s, an address that reaches internal space, when deployed', (url) => {
    expect(() => checkWebhookUrl(url, {})).toThrow(/not public/);
  });

  it.each([
    'https://localhost/x',
    'https://api.localhost/x',
    'https://printer.local/x',
    'https://ip-10-0-0-1.ec2.internal/x',
    'https://router.home.arpa./x',
    'https://instance-data/latest',
    'https://metadata/x',
  ])('refuses %s, a local-only name, when deployed', (url) => {
    expect(() => checkWebhookUrl(url, {})).toThrow(/local name/);
  });

  it('refuses credentials in the URL', () => {
    expect(() => checkWebhookUrl('https://user:pw@hooks.example.com/x', {})).toThrow(/credentials/);
  });

  it('allows http to loopback locally', () => {
    expect(checkWebhookUrl('http://127.0.0.1:9000/x', local).host).toBe('127.0.0.1:9000');
  });

  it('accepts https to a public name when deployed', () => {
    expect(checkWebhookUrl('https://hooks.example.com/x', {}).hostname).toBe('hooks.example.com');
  });
});

describe('isPublicAddress', () => {
  it.each([
    ['8.8.8.8', true],
    ['2606:4700:4700::1111', true],
    ['10.1.2.3', false],
    ['172.20.0.1', false],
    ['100.64.0.1', false],
    ['169.254.169.254', false],
    ['::ffff:127.0.0.1', false],
    ['fe80::1', false],
    ['fd00::1', false],
    ['not-an-ip', false],
  ])('%s → %s', (address, expected) => {
    expect(isPublicAddress(address)).toBe(expected);
  });
});
