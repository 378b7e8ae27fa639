/**
 * A TCP proxy for tests of what a client does when a connection stays open but stops delivering
 * (a network partition): `pause()` holds every byte the server sends (the client's own bytes still
 * go through), `resume()` delivers what was held, in order. Nothing is lost or reordered, so the
 * protocol on the connection stays intact.
 */
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';

export interface PausableProxy {
  /** The port the proxy listens on (127.0.0.1). */
  port: number;
  /** Holds what the server sends on every connection, open and future, until resume(). */
  pause(): void;
  resume(): void;
  close(): Promise<void>;
}

/** Starts a proxy to `target` on a free port. */
export async function startPausableProxy(target: { host: string; port: number }): Promise<PausableProxy> {
  const pairs = new Set<{ client: Socket; server: Socket }>();
  let paused = false;
  const server: Server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    const pair = { client, server: upstream };
    pairs.add(pair);
    client.pipe(upstream);
    upstream.pipe(client);
    if (paused) upstream.pause();
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    pause() {
      paused = true;
      for (const pair of pairs) pair.server.pause();
    },
    resume() {
      paused = false;
      for (const pair of pairs) pair.server.resume();
    },
    async close() {
      for (const pair of pairs) {
        pair.client.destroy();
        pair.server.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
