// A benchmark's helper processes (servers, gateways) talk back in JSON lines on stdout.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

/**
 * `command argv` with stdin a pipe (closing it tells the child to finish), stdout read as JSON
 * lines and stderr passed through. `next()` resolves with the next line, parsed, and rejects if
 * stdout ends first (the child died before it said anything).
 */
export function jsonChild(command, argv, options = {}) {
  const proc = spawn(command, argv, { stdio: ['pipe', 'pipe', 'inherit'], ...options });
  const lines = createInterface({ input: proc.stdout });
  let ended = false;
  lines.once('close', () => {
    ended = true;
  });
  const next = () =>
    new Promise((resolve, reject) => {
      const onClose = () => reject(new Error(`${argv.join(' ')}: output ended without a line`));
      if (ended) return onClose();
      lines.once('line', (line) => {
        lines.off('close', onClose);
        resolve(JSON.parse(line));
      });
      lines.once('close', onClose);
    });
  return { proc, next };
}
