/**
 * What "this machine only" means, for a listener without credentials (the reporting server
 * without an API token, the gateway without keys, the gateway's metrics port without a token):
 * which addresses it may listen on, which peers may talk to it and which `Host` names it answers
 * to. Pure functions of their input, shared by src/server, src/proxy and src/telemetry.
 */
import { BlockList, isIP } from 'node:net';

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/**
 * 127.0.0.0/8 and ::1, also in the IPv4-mapped form a dual-stack socket reports
 * (`::ffff:127.0.0.1`; BlockList matches those against IPv4 rules).
 */
export function isLoopbackAddress(address: string | undefined | null): boolean {
  if (!address) return false;
  const ip = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  const family = isIP(ip);
  if (family === 0) return false;
  return LOOPBACK.check(ip, family === 4 ? 'ipv4' : 'ipv6');
}

/** A host to listen on that only this machine can reach: `localhost` or a loopback address. */
export function isLoopbackBindHost(host: string): boolean {
  return host.toLowerCase() === 'localhost' || isLoopbackAddress(host);
}

/** `name` or `[v6]`, then an optional port: nothing else (no user info, path or spaces). */
const HOST_HEADER = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::\d{1,5})?$/;

/**
 * The host name of a `Host` header, normalized the way browsers normalize URLs (lower case,
 * `127.1` → `127.0.0.1`, `[0::1]` → `[::1]`); null when the header is missing or malformed.
 */
export function hostnameOf(header: string | undefined): string | null {
  if (!header || !HOST_HEADER.test(header)) return null;
  try {
    return new URL(`http://${header}`).hostname;
  } catch {
    return null;
  }
}

/**
 * `localhost` or a loopback address literal. A page that rebinds its own DNS name to 127.0.0.1
 * still sends that name in `Host`, so refusing every other name stops DNS rebinding.
 */
export function isLoopbackHostname(hostname: string): boolean {
  return hostname === 'localhost' || isLoopbackAddress(hostname);
}

/** An IP address literal: no DNS name, so nothing a web page can rebind. */
export function isIpLiteral(hostname: string): boolean {
  const ip = hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
  return isIP(ip) !== 0;
}
