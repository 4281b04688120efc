import { isIP } from 'node:net';

/**
 * Which IP addresses are public unicast: the answer to "may a deployed Lambda connect there?"
 * The reference is IANA's IPv4 and IPv6 Special-Purpose Address Registries: every block whose
 * "Globally Reachable" is False is refused. IPv6 forms that embed or route to an IPv4 address
 * (IPv4-mapped, NAT64, 6to4, ISATAP) are judged by that IPv4 address; the deprecated ones that
 * cannot reach a public host (IPv4-compatible, site-local) and the protocol assignments under
 * 2001::/23 (Teredo among them) are refused whole.
 */

/** A block of addresses: the first `bits` bits of `network`. */
interface Block {
  readonly network: bigint;
  readonly bits: number;
}

const V4_BITS = 32;
const V6_BITS = 128;

function block(text: string, bits: number): Block {
  const network = isIP(text) === 4 ? parseIpv4(text) : parseIpv6(text);
  if (network === undefined) throw new Error(`not an address: ${text}`);
  return { network, bits };
}

function contains(b: Block, address: bigint, width: number): boolean {
  const shift = BigInt(width - b.bits);
  return address >> shift === b.network >> shift;
}

/** IPv4 blocks that are not globally reachable unicast (IANA special-purpose, plus multicast and class E). */
const IPV4_NON_PUBLIC: readonly Block[] = [
  block('0.0.0.0', 8), // "this network"
  block('10.0.0.0', 8), // private
  block('100.64.0.0', 10), // shared address space (CGNAT)
  block('127.0.0.0', 8), // loopback
  block('169.254.0.0', 16), // link-local (cloud metadata lives here)
  block('172.16.0.0', 12), // private
  block('192.0.0.0', 24), // IETF protocol assignments
  block('192.0.2.0', 24), // TEST-NET-1
  block('192.88.99.0', 24), // deprecated 6to4 relay anycast
  block('192.168.0.0', 16), // private
  block('198.18.0.0', 15), // benchmarking
  block('198.51.100.0', 24), // TEST-NET-2
  block('203.0.113.0', 24), // TEST-NET-3
  block('224.0.0.0', 4), // multicast
  block('240.0.0.0', 4), // reserved, and the limited broadcast 255.255.255.255
];

/** IPv6 forms that carry an IPv4 address, and where it sits (bit offset from the left). */
const IPV6_EMBEDDING: ReadonlyArray<{
  readonly block: Block;
  readonly offset: number;
  readonly name: string;
}> = [
  { block: block('::ffff:0:0', 96), offset: 96, name: 'IPv4-mapped' },
  { block: block('64:ff9b::', 96), offset: 96, name: 'NAT64' },
  { block: block('2002::', 16), offset: 16, name: '6to4' },
];

/** Global unicast is 2000::/3; everything outside it (and not embedding IPv4 above) is refused. */
const IPV6_GLOBAL_UNICAST = block('2000::', 3);

/** Blocks inside 2000::/3 that are still not globally reachable. */
const IPV6_NON_PUBLIC_IN_GLOBAL: readonly Block[] = [
  block('2001::', 23), // IETF protocol assignments: Teredo 2001::/32, benchmarking, ORCHID…
  block('2001:db8::', 32), // documentation
  block('3fff::', 20), // documentation
];

/** ISATAP interface identifiers (`::0:5efe:a.b.c.d`, `::200:5efe:a.b.c.d`) name an IPv4 host. */
function isatapIpv4(address: bigint): bigint | undefined {
  const marker = (address >> 32n) & 0xfdffffffn;
  return marker === 0x00005efen ? address & 0xffffffffn : undefined;
}

function parseIpv4(text: string): bigint | undefined {
  const parts = text.split('.');
  if (parts.length !== 4 || parts.some((part) => !/^\d{1,3}$/.test(part) || Number(part) > 255)) return;
  return parts.reduce((value, part) => (value << 8n) | BigInt(part), 0n);
}

/** An IPv6 literal (zone and dotted IPv4 tail allowed) as a 128-bit number. */
function parseIpv6(text: string): bigint | undefined {
  const address = text.replace(/%.*$/, '');
  if (isIP(address) !== 6) return;
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(address)?.[1];
  let hex = address;
  if (dotted) {
    const v4 = parseIpv4(dotted);
    if (v4 === undefined) return;
    hex = `${address.slice(0, -dotted.length)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const [head = '', tail] = hex.split('::');
  const groups = (part: string) => (part === '' ? [] : part.split(':'));
  const left = groups(head);
  const right = tail === undefined ? [] : groups(tail);
  const all =
    tail === undefined ? left : [...left, ...Array(8 - left.length - right.length).fill('0'), ...right];
  if (all.length !== 8) return;
  return all.reduce((value, group) => (value << 16n) | BigInt(`0x${group}`), 0n);
}

function isPublicIpv4(address: bigint): boolean {
  return !IPV4_NON_PUBLIC.some((b) => contains(b, address, V4_BITS));
}

function isPublicIpv6(address: bigint): boolean {
  for (const { block: b, offset } of IPV6_EMBEDDING) {
    if (contains(b, address, V6_BITS)) {
      return isPublicIpv4((address >> BigInt(V6_BITS - offset - V4_BITS)) & 0xffffffffn);
    }
  }
  if (!contains(IPV6_GLOBAL_UNICAST, address, V6_BITS)) return false;
  if (IPV6_NON_PUBLIC_IN_GLOBAL.some((b) => contains(b, address, V6_BITS))) return false;
  const isatap = isatapIpv4(address);
  return isatap === undefined || isPublicIpv4(isatap);
}

/**
 * Whether an IP literal (IPv4 dotted quad, or IPv6 with or without brackets) is a public unicast
 * address a deployed function may connect to. Anything that is not an IP literal is not public.
 */
export function isPublicAddress(address: string): boolean {
  const literal = address.replace(/^\[(.*)\]$/, '$1');
  const v4 = isIP(literal) === 4 ? parseIpv4(literal) : undefined;
  if (v4 !== undefined) return isPublicIpv4(v4);
  const v6 = parseIpv6(literal);
  return v6 !== undefined && isPublicIpv6(v6);
}
