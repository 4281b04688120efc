import { createHmac } from 'node:crypto';
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { isPublicAddress } from '../shared/public-address.js';
import { checkWebhookUrl, type WebhookPolicy, WebhookRefusedError } from '../shared/webhook-url.js';

// The URL policy lives in functions/shared (the API checks webhook_url with it too).
export { checkWebhookUrl, isPublicAddress, type WebhookPolicy, WebhookRefusedError };

/** A delivery's tries and their timing when the caller sets none: bounded well inside Notify's timeout. */
export const WEBHOOK_TIMING = { attempts: 5, firstBackoffMs: 1000, timeoutMs: 10_000 } as const;

export interface WebhookDeliveryOptions {
  /**
   * The `webhook-id`: the same for every delivery of the same message, retries and repeated
   * Notify runs included, so the receiver can drop repeats (Standard Webhooks).
   */
  readonly webhookId: string;
  /** The signing secret: `whsec_<base64>` (Standard Webhooks), or any other string used as UTF-8 bytes. */
  readonly secret: string;
  readonly policy: WebhookPolicy;
  /** Tries in all. @default 5 */
  readonly attempts?: number;
  /** Wait before the 2nd try, doubling after. @default 1000 ms */
  readonly firstBackoffMs?: number;
  /** Timeout of one try. @default 10000 ms */
  readonly timeoutMs?: number;
  /** Injected for tests. */
  readonly now?: () => number;
  readonly lookup?: typeof dnsLookup;
}

export interface DeliveryAttempt {
  readonly at: string;
  readonly status?: number;
  readonly error?: string;
}

/** What happened to one webhook: kept in S3 next to the generation, never fatal to it. */
export interface DeliveryRecord {
  readonly url: string;
  readonly webhookId: string;
  readonly type: string;
  readonly delivered: boolean;
  readonly attempts: readonly DeliveryAttempt[];
}

/**
 * The Standard Webhooks signature: `v1,` + base64 HMAC-SHA256 over `${id}.${timestamp}.${body}`,
 * keyed with the secret's bytes (base64-decoded after a `whsec_` prefix).
 */
export function signWebhook(secret: string, id: string, timestamp: number, body: string): string {
  const key = secret.startsWith('whsec_')
    ? Buffer.from(secret.slice(6), 'base64')
    : Buffer.from(secret, 'utf8');
  return `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64')}`;
}

/**
 * POSTs a signed JSON payload, retrying network errors, 408, 429 and 5xx with exponential
 * backoff for a bounded number of tries. Redirects are never followed (a 3xx counts as a failed
 * try). Deployed, every resolved address is checked at connect time, so DNS cannot point a
 * public name at a private address. Never throws: the outcome is returned as a record.
 */
export async function deliverWebhook(
  rawUrl: string,
  type: string,
  payload: unknown,
  options: WebhookDeliveryOptions,
): Promise<DeliveryRecord> {
  const now = options.now ?? Date.now;
  const { webhookId } = options;
  const attempts: DeliveryAttempt[] = [];
  const record = (delivered: boolean): DeliveryRecord => ({
    url: redact(rawUrl),
    webhookId,
    type,
    delivered,
    attempts,
  });
  let url: URL;
  try {
    url = checkWebhookUrl(rawUrl, options.policy);
  } catch (error) {
    attempts.push({ at: new Date(now()).toISOString(), error: (error as Error).message });
    return record(false);
  }
  const body = JSON.stringify({ type, timestamp: new Date(now()).toISOString(), data: payload });
  const total = options.attempts ?? WEBHOOK_TIMING.attempts;

  for (let attempt = 1; attempt <= total; attempt++) {
    const timestamp = Math.floor(now() / 1000);
    const at = new Date(now()).toISOString();
    try {
      const status = await post(
        url,
        body,
        {
          'content-type': 'application/json',
          'webhook-id': webhookId,
          'webhook-timestamp': String(timestamp),
          'webhook-signature': signWebhook(options.secret, webhookId, timestamp, body),
        },
        options,
      );
      attempts.push({ at, status });
      if (status >= 200 && status < 300) return record(true);
      const retryable = status === 408 || status === 429 || status >= 500;
      if (status >= 300 && status < 400)
        attempts[attempts.length - 1] = { at, status, error: 'redirect refused' };
      if (!retryable) return record(false);
    } catch (error) {
      attempts.push({ at, error: (error as Error).message });
      if (error instanceof WebhookRefusedError) return record(false);
    }
    if (attempt < total)
      await sleep((options.firstBackoffMs ?? WEBHOOK_TIMING.firstBackoffMs) * 2 ** (attempt - 1));
  }
  return record(false);
}

function post(
  url: URL,
  body: string,
  headers: Record<string, string>,
  options: WebhookDeliveryOptions,
): Promise<number> {
  const transport = url.protocol === 'https:' ? https : http;
  const lookup = guardedLookup(options.lookup ?? dnsLookup, options.policy);
  return new Promise((resolve, reject) => {
    const request = transport.request(
      url,
      {
        method: 'POST',
        headers: { ...headers, 'content-length': Buffer.byteLength(body) },
        lookup,
        timeout: options.timeoutMs ?? WEBHOOK_TIMING.timeoutMs,
      },
      (response) => {
        response.resume();
        response.on('end', () => resolve(response.statusCode ?? 0));
        response.on('error', reject);
      },
    );
    request.on('timeout', () => request.destroy(new Error('no answer in time')));
    request.on('error', reject);
    request.end(body);
  });
}

/** A DNS lookup that fails the connection when a resolved address is not public (unless allowed). */
function guardedLookup(lookup: typeof dnsLookup, policy: WebhookPolicy): LookupFunction {
  return (hostname, options, callback) => {
    lookup(hostname, { ...options, all: true }, (error, addresses) => {
      if (error) return callback(error, '', 0);
      const list = addresses as unknown as LookupAddress[];
      const refused = list.find((entry) => !policy.allowPrivateAddresses && !isPublicAddress(entry.address));
      if (refused) {
        return callback(
          new WebhookRefusedError(
            `webhook host ${hostname} resolves to ${refused.address}, which is not public`,
          ),
          '',
          0,
        );
      }
      if (options.all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, list);
      const first = list[0];
      if (!first) return callback(new Error(`webhook host ${hostname} has no address`), '', 0);
      callback(null, first.address, first.family);
    });
  };
}

/** The URL without its query or credentials, for records and logs (tokens often hide there). */
export function redact(raw: string): string {
  try {
    const url = new URL(raw);
    return `${url.protocol}//${url.host}${url.pathname}`;
  } catch {
    return '(invalid URL)';
  }
}
