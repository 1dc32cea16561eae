/**
 * Where the app may listen. `createServer(meter).listen(8787)` with no token binds 127.0.0.1
 * (Node's own default is every interface); an explicit host other machines can reach needs a
 * token or `insecureNoAuth`, which says so on the logger. The CLI applies the same rule to
 * `--host` through bindRefusal, with its own flag names.
 */
import { InvalidOptionError } from '../errors/errors.js';
import { isLoopbackBindHost } from '../net/loopback.js';

interface ListenPolicy {
  apiToken?: string | undefined;
  insecureNoAuth?: boolean | undefined;
}

/** Without a token the server must not be reachable from other machines (the CLI binds here). */
export function defaultHost(options: Pick<ListenPolicy, 'apiToken'> = {}): string {
  return options.apiToken ? '0.0.0.0' : '127.0.0.1';
}

/** Why listening on `host` is refused, or null when it is allowed. */
export function bindRefusal(host: string, policy: ListenPolicy): 'no_token' | null {
  if (policy.apiToken || policy.insecureNoAuth || isLoopbackBindHost(host)) return null;
  return 'no_token';
}

/** Node reads a string first argument that is not a number ≥ 0 as a pipe or socket path. */
const isPipeName = (value: unknown) => typeof value === 'string' && !(Number(value) >= 0);

/**
 * `listen`'s arguments with the host the policy allows: unchanged when there is a token or the
 * target is a pipe or socket path; 127.0.0.1 inserted when no host is given; an error for a host
 * beyond loopback. `warn` hears about a non-loopback bind allowed by `insecureNoAuth`.
 */
export function listenArgs(
  args: unknown[],
  policy: ListenPolicy,
  warn: (message: string) => void,
): unknown[] {
  if (policy.apiToken) return args;
  const [first, ...rest] = args;
  let host: unknown;
  let withHost: () => unknown[];
  if (typeof first === 'object' && first !== null) {
    const options = first as { host?: unknown; path?: unknown };
    if (options.path !== undefined) return args;
    host = options.host;
    withHost = () => [{ ...options, host: '127.0.0.1' }, ...rest];
  } else if (isPipeName(first)) {
    return args;
  } else if (typeof first === 'function' || args.length === 0) {
    withHost = () => [0, '127.0.0.1', ...args];
  } else {
    host = rest[0];
    withHost = () => [first, '127.0.0.1', ...(typeof rest[0] === 'string' ? rest.slice(1) : rest)];
  }
  if (typeof host !== 'string') return withHost();
  if (isLoopbackBindHost(host)) return args;
  if (!policy.insecureNoAuth) {
    throw new InvalidOptionError(
      `Refusing to listen on ${JSON.stringify(host)} without an \`apiToken\`: the usage, budget and ` +
        'price routes would be open to every machine that can reach it. Set `apiToken`, listen on ' +
        'a loopback host (127.0.0.1, ::1, localhost), or pass `insecureNoAuth: true` to accept that.',
    );
  }
  warn(
    `llm-meter server: listening on ${JSON.stringify(host)} with no API token (insecureNoAuth): ` +
      'anyone who can reach it can read usage and change budgets and prices.',
  );
  return args;
}
