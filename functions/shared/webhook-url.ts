import { isIP } from 'node:net';
import { isPublicAddress } from './public-address.js';

/**
 * Who may receive webhooks. The same policy judges a `webhook_url` when the API accepts a
 * request and when the notifier delivers, so the API never accepts a URL the notifier will refuse.
 * Deployed (the defaults): https to public addresses only.
 */
export interface WebhookPolicy {
  /** Allow plain http (local receivers only). @default false */
  readonly allowHttp?: boolean;
  /** Allow loopback, private and link-local addresses and local names (local receivers only). @default false */
  readonly allowPrivateAddresses?: boolean;
}

/** The policy of the local pipeline: receivers on this machine (http, loopback) are fine. */
export const LOCAL_WEBHOOK_POLICY: WebhookPolicy = { allowHttp: true, allowPrivateAddresses: true };

/** A target the policy refuses: not retried. */
export class WebhookRefusedError extends Error {
  override readonly name = 'WebhookRefusedError';
}

/**
 * Special-use names that never resolve to a public address (RFC 6761, 6762, 8375, and ICANN's
 * `.internal`): a deployed notifier would always refuse them.
 */
const LOCAL_NAME = /(^|\.)(localhost|local|internal|home\.arpa|invalid|test)$/i;

/**
 * Refuses a URL the policy does not allow, before any connection: a scheme other than https
 * (or http when allowed), credentials in the URL, a non-public IP literal, or a local-only name
 * (a special-use domain or a single label).
 * A host name is resolved only at delivery, where every resolved address is checked again.
 * @throws WebhookRefusedError naming the reason
 */
export function checkWebhookUrl(raw: string, policy: WebhookPolicy): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch (error) {
    throw new WebhookRefusedError('webhook URL is not a valid URL', { cause: error });
  }
  if (url.protocol !== 'https:' && !(policy.allowHttp && url.protocol === 'http:')) {
    throw new WebhookRefusedError(
      `webhook URL scheme ${url.protocol} is not allowed (${policy.allowHttp ? 'http or https' : 'https only'})`,
    );
  }
  if (url.username || url.password) throw new WebhookRefusedError('webhook URL must not carry credentials');
  if (policy.allowPrivateAddresses) return url;
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (isIP(host) && !isPublicAddress(host)) {
    throw new WebhookRefusedError(`webhook address ${host} is not public`);
  }
  const name = host.replace(/\.$/, '');
  // A single label (`metadata`, `instance-data`) resolves only through a local search domain.
  if (!isIP(host) && (LOCAL_NAME.test(name) || !name.includes('.'))) {
    throw new WebhookRefusedError(`webhook host ${host} is a local name, not a public one`);
  }
  return url;
}
