/**
 * The baseline: the least a WebSocket server can do and still answer the protocol's ping. A bare
 * `ws` server (no fastify, no limits, no sessions) that JSON.parses each text frame and answers
 * `{"type":"pong","request_id":id}`, byte for byte what Parley sends. Whatever Parley costs beyond
 * this is the price of its admission, limits, validation and sessions.
 *
 * Run as a child of bench/run.ts (IPC), never on its own.
 */
import { WebSocketServer, type WebSocket } from 'ws';
import { runChild } from '../lib/ipc.js';

let wss: WebSocketServer | undefined;

await runChild(
  () =>
    new Promise<number>((resolve, reject) => {
      // perMessageDeflate off, as in Parley (src/app.ts); otherwise ws defaults, UTF-8 validation included.
      const server = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
      wss = server;
      server.on('error', reject);
      server.on('listening', () => {
        const addr = server.address();
        if (typeof addr === 'object' && addr) resolve(addr.port);
        else reject(new Error(`unexpected listen address ${String(addr)}`));
      });
      server.on('connection', (ws: WebSocket) => {
        ws.on('error', () => undefined); // a client reset must not crash the baseline
        ws.on('message', (data, isBinary) => {
          if (isBinary) return;
          let msg: { type?: unknown; id?: unknown };
          try {
            msg = JSON.parse((data as Buffer).toString()) as typeof msg;
          } catch {
            return;
          }
          if (msg.type === 'ping') ws.send(JSON.stringify({ type: 'pong', request_id: msg.id }));
        });
      });
    }),
  async () => {
    if (!wss) return;
    for (const ws of wss.clients) ws.terminate();
    await new Promise<void>((r) => wss!.close(() => r()));
  },
);
