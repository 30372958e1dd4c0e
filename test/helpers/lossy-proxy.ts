/**
 * A TCP proxy in front of a real Redis that can lose one reply: `loseNextReply()` arms it, and the
 * next bytes Redis sends back are swallowed and that client connection is cut. The command was
 * applied by Redis, the client never heard, and ioredis resends it after it reconnects: the case
 * the store's replay records are for.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

export interface LossyProxy {
  readonly url: string;
  loseNextReply(): void;
  /** From now on every reply is swallowed and no connection is cut: a Redis that hangs. */
  swallowReplies(): void;
  /** Connections cut so far. */
  readonly cuts: number;
  close(): Promise<void>;
}

export async function startLossyProxy(redisPort: number): Promise<LossyProxy> {
  let armed = false;
  let swallowing = false;
  let cuts = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(redisPort, '127.0.0.1');
    sockets.add(client).add(upstream);
    const drop = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', drop).on('error', drop).on('data', (d) => upstream.write(d));
    upstream.on('close', drop).on('error', drop).on('data', (d) => {
      if (swallowing) return;
      if (armed) {
        armed = false;
        cuts++;
        drop();
        return;
      }
      client.write(d);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `redis://127.0.0.1:${port}`,
    loseNextReply: () => void (armed = true),
    swallowReplies: () => void (swallowing = true),
    get cuts() {
      return cuts;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
