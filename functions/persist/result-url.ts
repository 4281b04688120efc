/** Which result URLs persist may download. */
export interface ResultUrlPolicy {
  /** Allowed host names; `*.example.com` allows every subdomain of example.com (not the apex). */
  readonly hosts: readonly string[];
  /** Allow plain http (the local emulator only; never on AWS). @default false */
  readonly allowHttp?: boolean;
}

/**
 * Checks a result URL against the policy and returns it parsed, or a reason it is refused.
 * Only https (unless allowed), no credentials in the URL, host on the allow-list.
 */
export function checkResultUrl(raw: string, policy: ResultUrlPolicy): { url: URL } | { reason: string } {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { reason: 'result URL is not a valid URL' };
  }
  if (url.protocol !== 'https:' && !(policy.allowHttp && url.protocol === 'http:')) {
    return { reason: `result URL scheme ${url.protocol} is not allowed (https only)` };
  }
  if (url.username || url.password) return { reason: 'result URL must not carry credentials' };
  const host = url.hostname.toLowerCase();
  const allowed = policy.hosts.some((pattern) => {
    const p = pattern.toLowerCase();
    return p.startsWith('*.') ? host.endsWith(p.slice(1)) && host.length > p.length - 1 : host === p;
  });
  if (!allowed) return { reason: `result host ${host} is not on the allow-list` };
  return { url };
}
