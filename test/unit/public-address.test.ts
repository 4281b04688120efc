import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isPublicAddress } from '../../functions/shared/public-address.js';

/** One address inside every IPv4 block of IANA's special-purpose registry that is not global, plus multicast and class E. */
const NON_GLOBAL_V4 = [
  '0.0.0.0',
  '0.1.2.3',
  '10.1.2.3',
  '100.64.0.1',
  '100.127.255.254',
  '127.0.0.1',
  '127.255.255.255',
  '169.254.169.254',
  '172.16.0.1',
  '172.31.255.255',
  '192.0.0.8',
  '192.0.2.1',
  '192.88.99.1',
  '192.168.1.2',
  '198.18.0.1',
  '198.19.255.255',
  '198.51.100.7',
  '203.0.113.9',
  '224.0.0.1',
  '239.255.255.250',
  '240.0.0.1',
  '255.255.255.255',
];

const PUBLIC_V4 = [
  '8.8.8.8',
  '1.1.1.1',
  '93.184.216.34',
  '172.32.0.1',
  '100.128.0.1',
  '198.20.0.1',
  '11.0.0.1',
];

/** The IPv6 forms that embed an IPv4 address, written with it. */
const embeddings = (v4: string): string[] => {
  const [a = 0, b = 0, c = 0, d = 0] = v4.split('.').map(Number);
  const high = ((a << 8) | b).toString(16);
  const low = ((c << 8) | d).toString(16);
  return [
    `::ffff:${v4}`,
    `::ffff:${high}:${low}`,
    `64:ff9b::${v4}`,
    `64:ff9b::${high}:${low}`,
    `2002:${high}:${low}::1`,
    `2001:4860:1:2:0:5efe:${high}:${low}`,
    `2001:4860:1:2:200:5efe:${v4}`,
  ];
};

describe('isPublicAddress', () => {
  it.each(NON_GLOBAL_V4)('refuses the non-global IPv4 address %s', (address) => {
    expect(isPublicAddress(address)).toBe(false);
  });

  it.each(PUBLIC_V4)('accepts the public IPv4 address %s', (address) => {
    expect(isPublicAddress(address)).toBe(true);
  });

  it.each(NON_GLOBAL_V4.flatMap(embeddings))(
    'refuses %s, an IPv6 form of a non-global IPv4 address',
    (address) => {
      expect(isPublicAddress(address)).toBe(false);
    },
  );

  it.each(PUBLIC_V4.flatMap(embeddings))('accepts %s, an IPv6 form of a public IPv4 address', (address) => {
    expect(isPublicAddress(address)).toBe(true);
  });

  it.each([
    ['64:ff9b::a9fe:a9fe', 'NAT64 of the metadata address'],
    ['2002:a9fe:a9fe::', '6to4 of the metadata address'],
    ['::127.0.0.1', 'IPv4-compatible loopback'],
    ['::8.8.8.8', 'IPv4-compatible (deprecated, never global)'],
    ['::7f00:1', 'IPv4-compatible, hex'],
    ['fec0::1', 'site-local (deprecated)'],
    ['64:ff9b:1::a9fe:a9fe', 'local-use NAT64'],
    ['64:ff9b:1:ffff::808:808', 'local-use NAT64 of a public address'],
    ['2001:0:4136:e378:8000:63bf:3fff:fdd2', 'Teredo'],
    ['2001:2::1', 'benchmarking'],
    ['2001:10::1', 'ORCHID'],
    ['2001:db8::1', 'documentation'],
    ['3fff::1', 'documentation (RFC 9637)'],
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['100::1', 'discard-only'],
    ['fc00::1', 'unique local'],
    ['fd12:3456::1', 'unique local'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local with a zone'],
    ['ff02::1', 'multicast'],
    ['5f00::1', 'SRv6 SIDs'],
    ['[::1]', 'loopback in brackets'],
    ['not-an-ip', 'no address at all'],
    ['', 'empty'],
    ['1.2.3', 'three-part IPv4'],
  ])('refuses %s (%s)', (address) => {
    expect(isPublicAddress(address)).toBe(false);
  });

  it.each([
    '2606:4700:4700::1111',
    '2001:4860:4860::8888',
    '2a00:1450:4001:80b::200e',
    '[2606:4700:4700::1111]',
  ])('accepts the global unicast IPv6 address %s', (address) => {
    expect(isPublicAddress(address)).toBe(true);
  });

  it('refuses every IPv6 address outside global unicast 2000::/3 that embeds no IPv4 address', () => {
    const group = fc.integer({ min: 0, max: 0xffff }).map((n) => n.toString(16));
    const outside = fc
      .tuple(fc.integer({ min: 0, max: 0xffff }), fc.array(group, { minLength: 7, maxLength: 7 }))
      .filter(([first]) => first < 0x2000 || first >= 0x4000)
      .filter(
        ([first, rest]) => !(first === 0 && rest.slice(0, 5).every((g) => g === '0') && rest[5] === 'ffff'),
      )
      .filter(
        ([first, rest]) =>
          !(first === 0x64 && rest[0] === 'ff9b' && rest.slice(1, 5).every((g) => g === '0')),
      )
      .map(([first, rest]) => [first.toString(16), ...rest].join(':'));
    fc.assert(fc.property(outside, (address) => !isPublicAddress(address)));
  });
});
