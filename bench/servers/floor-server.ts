/**
 * The stack's own floor: fastify + @fastify/websocket holding sockets with nothing else, configured
 * as Parley configures them (src/app.ts: perMessageDeflate off, clientTracking off, UTF-8 checked by
 * the handler, the same maxPayload ceiling). It answers the protocol's `ping` exactly as the bare
 * `ws` server does, so the same load client drives all three servers. Whatever Parley costs above
 * this is the price of its own code; whatever this costs above bare `ws` is the price of the stack
 * the project chose (VERIFIED.md: "The stack's own floor per idle socket").
 *
 * Run as a child of the bench orchestrator (IPC), never on its own.
 */
import websocket from '@fastify/websocket';
import Fastify, { type FastifyInstance } from 'fastify';
import type { WebSocket } from 'ws';
import { runChild } from '../lib/ipc.js';

let app: FastifyInstance | undefined;

await runChild(
  async () => {
    const server = Fastify({ logger: false });
    app = server;
    await server.register(websocket, {
      options: { maxPayload: 4 * 262_144, skipUTF8Validation: true, perMessageDeflate: false, clientTracking: false },
      preClose: async () => undefined,
    });
    server.get('/v1/realtime', { websocket: true }, (socket: WebSocket) => {
      socket.on('error', () => undefined); // a client reset must not crash the floor
      socket.on('message', (data, isBinary) => {
        if (isBinary) return;
        let msg: { type?: unknown; id?: unknown };
        try {
          msg = JSON.parse((data as Buffer).toString()) as typeof msg;
        } catch {
          return;
        }
        if (msg.type === 'ping') socket.send(JSON.stringify({ type: 'pong', request_id: msg.id }));
      });
    });
    await server.listen({ port: 0, host: '127.0.0.1' });
    const addr = server.server.address();
    if (typeof addr !== 'object' || !addr) throw new Error(`unexpected listen address ${String(addr)}`);
    return addr.port;
  },
  async () => {
    await app?.close();
  },
);
