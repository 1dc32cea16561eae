import { BlockList, isIP } from 'node:net';

/**
 * Which addresses a webhook may not reach: everything that is not plainly a public unicast
 * host, in IPv4 and in every IPv6 spelling that carries an IPv4 address. Ranges from the IANA
 * special-purpose registries (RFC 6890 and its updates); judged by `net.BlockList`, never by
 * parsing text ourselves.
 */

/** IPv4 ranges that are not public unicast hosts. */
const IPV4_BLOCKED: readonly (readonly [string, number])[] = [
  ['0.0.0.0', 8], // "this network", 0.0.0.0 reaches the local host
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // shared address space (CGNAT)
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local, cloud metadata services
  ['172.16.0.0', 12],
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], // documentation
  ['192.88.99.0', 24], // 6to4 relay anycast (deprecated)
  ['192.168.0.0', 16],
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24], // documentation
  ['203.0.113.0', 24], // documentation
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, and the limited broadcast address
];

/**
 * IPv6 outside global unicast (2000::/3) is refused whole: the unspecified and loopback
 * addresses, IPv4-compatible (::a.b.c.d) and IPv4-translated (::ffff:0:a.b.c.d) forms, the
 * local-use NAT64 prefix 64:ff9b:1::/48, discard-only, unique-local fc00::/7, link-local
 * fe80::/10, site-local and multicast ff00::/8. Inside it, the special-purpose and
 * documentation blocks are refused too (Teredo 2001::/32 carries an obfuscated IPv4 address).
 */
const IPV6_BLOCKED: readonly (readonly [string, number])[] = [
  ['::', 3],
  ['4000::', 2],
  ['8000::', 1],
  ['2001::', 23], // IETF protocol assignments: Teredo, benchmarking, ORCHID
  ['2001:db8::', 32], // documentation
  ['3fff::', 20], // documentation
];

/**
 * IPv6 forms that carry an IPv4 address and are judged by it: IPv4-mapped ::ffff:0:0/96
 * (RFC 4291 §2.5.5.2), the well-known NAT64 prefix 64:ff9b::/96 (RFC 6052) and 6to4 2002::/16
 * (RFC 3056, the IPv4 address in bits 16–47).
 */
const EMBEDDINGS: readonly { prefix: (hextets: string) => string; bits: number; whole: string }[] = [
  { prefix: (h) => `::ffff:${h}`, bits: 96, whole: '::ffff:0:0' },
  { prefix: (h) => `64:ff9b::${h}`, bits: 96, whole: '64:ff9b::' },
  { prefix: (h) => `2002:${h}::`, bits: 16, whole: '2002::' },
];

/** "10.0.0.0" → "a00:0": the IPv4 address as the two hextets that carry it. */
function hextets(ipv4: string): string {
  const [a, b, c, d] = ipv4.split('.').map(Number) as [number, number, number, number];
  return `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
}

const ipv4Blocked = new BlockList();
for (const [net, prefix] of IPV4_BLOCKED) ipv4Blocked.addSubnet(net, prefix, 'ipv4');

const ipv6Blocked = new BlockList();
for (const [net, prefix] of IPV6_BLOCKED) ipv6Blocked.addSubnet(net, prefix, 'ipv6');

/** Each blocked IPv4 range, spelled in each IPv6 form that carries an IPv4 address. */
const embeddedBlocked = new BlockList();
/** The carrying forms themselves: a public IPv4 address inside one of them is public. */
const embedding = new BlockList();
for (const form of EMBEDDINGS) {
  embedding.addSubnet(form.whole, form.bits, 'ipv6');
  for (const [net, prefix] of IPV4_BLOCKED) {
    embeddedBlocked.addSubnet(form.prefix(hextets(net)), form.bits + prefix, 'ipv6');
  }
}

/** True unless `address` is an IP address a webhook may reach (a public unicast host). */
export function isPrivateAddress(address: string): boolean {
  // A zone index only makes sense on a link: nothing public has one.
  if (address.includes('%')) return true;
  const family = isIP(address);
  if (family === 4) return ipv4Blocked.check(address, 'ipv4');
  if (family !== 6) return true;
  if (embeddedBlocked.check(address, 'ipv6')) return true;
  if (embedding.check(address, 'ipv6')) return false;
  return ipv6Blocked.check(address, 'ipv6');
}
