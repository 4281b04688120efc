const LABEL = '[a-z0-9](?:[a-z0-9-]*[a-z0-9])?';
/** A top-level label starts with a letter, so `300.1.1.1` is not taken for a host name. */
const TOP_LABEL = '[a-z](?:[a-z0-9-]*[a-z0-9])?';
const HOST_NAME = new RegExp(`^(?:${LABEL}\\.)+${TOP_LABEL}$`, 'i');
const WILDCARD = new RegExp(`^\\*\\.(?:${LABEL}\\.)+${TOP_LABEL}$`, 'i');
const IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)$/;

/**
 * Whether `value` is an allow-list entry: a host name with at least two labels, `localhost`, an
 * IPv4 literal, or `*.` followed by a domain of at least two labels (`*.aliyuncs.com`, not `*.com`).
 */
export function isHostPattern(value: string): boolean {
  return value === 'localhost' || IPV4.test(value) || HOST_NAME.test(value) || WILDCARD.test(value);
}

/** The message for a value {@link isHostPattern} refuses. */
export const HOST_PATTERN_MESSAGE =
  'must be a host name, an IPv4 address, or "*." and a domain of two or more labels';

/** Whether a URL is https, or http to this machine's loopback (the local emulator). */
export function isSecureOrLoopback(url: string): boolean {
  try {
    const { protocol, hostname } = new URL(url);
    return (
      protocol === 'https:' ||
      (protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(hostname))
    );
  } catch {
    return false;
  }
}
