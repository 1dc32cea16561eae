// The servers bench/fetch.mjs measures against, in their own process so their CPU time is not
// charged to the client under test. Prints one JSON line with their URLs, then serves until
// stdin closes.
//
//   - the simulator (non-streaming chat completions, no delays);
//   - /stream/<id>/<consumers>/<chunks>/<intervalMs>/v1/chat/completions: waits for <consumers>
//     requests with the same <id>, then writes the same chat-completion chunks to all of them on
//     one schedule, each stamped with its index and send time, alternating which socket is
//     written first;
//   - /bulk/<megabytes>/v1/chat/completions: that many MB of chat-completion chunks as fast as
//     the client reads them (backpressure honoured), then usage and [DONE].
import { startSimulator } from '../dist/sim/index.js';
import { serveUntilStdinEnds, startStreamServer, writeBulk, writeStamped } from './lib/server.mjs';

const now = () => performance.timeOrigin + performance.now();
const sim = await startSimulator({ defaults: { outputTokens: 12 } });
const waiting = new Map();

const { server, url } = await startStreamServer(
  async (req, res, _body, withUsage) => {
    const parts = new URL(req.url, 'http://x').pathname.split('/');
    if (parts[1] === 'stream') {
      const [id, consumers, chunks, intervalMs] = [parts[2], ...parts.slice(3, 6).map(Number)];
      const group = waiting.get(id) ?? [];
      group.push(res);
      waiting.set(id, group);
      if (group.length < consumers) return;
      waiting.delete(id);
      await writeStamped(group, { chunks, intervalMs, withUsage, stamp: now });
    } else if (parts[1] === 'bulk') {
      await writeBulk(res, Number(parts[2]), withUsage);
    } else {
      res.writeHead(404).end();
    }
  },
  { keepAliveTimeout: 60_000 },
);
process.stdout.write(`${JSON.stringify({ sim: sim.url, streams: url })}\n`);
serveUntilStdinEnds(server, sim);
