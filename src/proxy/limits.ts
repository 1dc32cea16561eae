import type { Socket } from 'node:net';

/**
 * What one client (one remote address) may hold in the gateway at once, and what all of them
 * may: connections, and request-body bytes read into memory and not yet released. Without these
 * a handful of clients can make the gateway buffer `clients × maxRequestBodyBytes`.
 */
interface ClientLimitsOptions {
  connectionsPerClient: number;
  bodyBytesPerClient: number;
  bodyBytesTotal: number;
}

export type Charge = 'ok' | 'client' | 'total';

export interface ClientLimits {
  /** Count a new connection until it closes; the sockets over their client's cap are marked. */
  connected(socket: Socket): void;
  /** Whether this connection came in over its client's cap. */
  overCap(socket: Socket): boolean;
  /** Take `bytes` of body memory for `client`, or say whose cap it would break (taking nothing). */
  charge(client: string, bytes: number): Charge;
  release(client: string, bytes: number): void;
  /** Body bytes held by every client now. */
  bodyBytes(): number;
}

/**
 * Who a connection counts against: its IPv4 address (IPv4-mapped IPv6 ones too), or for IPv6 its
 * /64 network, the smallest block one subscriber is usually given (RFC 6177): one client could
 * otherwise take a fresh address from its /64 for every connection.
 */
export function clientOf(socket: Socket): string {
  return clientKey(socket.remoteAddress ?? 'unknown');
}

export function clientKey(address: string): string {
  if (address.includes('.')) return address.startsWith('::ffff:') ? address.slice(7) : address;
  if (!address.includes(':')) return address;
  const bare = address.split('%')[0]!.toLowerCase();
  if (bare === '::1') return bare;
  const [head = '', tail] = bare.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups =
    tail === undefined
      ? left
      : [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right];
  return `${groups
    .slice(0, 4)
    .map((g) => Number.parseInt(g || '0', 16).toString(16))
    .join(':')}::/64`;
}

export function createClientLimits(options: ClientLimitsOptions): ClientLimits {
  const connections = new Map<string, number>();
  const bytes = new Map<string, number>();
  const over = new WeakSet<Socket>();
  let total = 0;
  return {
    connected(socket) {
      const client = clientOf(socket);
      const n = (connections.get(client) ?? 0) + 1;
      connections.set(client, n);
      if (n > options.connectionsPerClient) over.add(socket);
      socket.once('close', () => {
        const left = (connections.get(client) ?? 1) - 1;
        if (left <= 0) connections.delete(client);
        else connections.set(client, left);
      });
    },
    overCap: (socket) => over.has(socket),
    charge(client, n) {
      const held = bytes.get(client) ?? 0;
      if (held + n > options.bodyBytesPerClient) return 'client';
      if (total + n > options.bodyBytesTotal) return 'total';
      bytes.set(client, held + n);
      total += n;
      return 'ok';
    },
    release(client, n) {
      if (n <= 0) return;
      const left = (bytes.get(client) ?? 0) - n;
      if (left <= 0) bytes.delete(client);
      else bytes.set(client, left);
      total = Math.max(0, total - n);
    },
    bodyBytes: () => total,
  };
}
