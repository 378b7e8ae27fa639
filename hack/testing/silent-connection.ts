/**
 * A client that connects and never sends a request (a load balancer's pre-opened connection, a TCP
 * probe, a slowloris), for tests of how HTTP servers treat it.
 */
import { connect, type Socket } from 'node:net';

/** Connects to 127.0.0.1:`port`; the socket's errors are ignored (the server may reset it). */
export function openSilentConnection(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.off('error', reject);
      socket.on('error', () => undefined);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/** Resolves once the server closed `socket`: what it sent until then, and the ms since `since`. */
export function untilServerCloses(socket: Socket, since: number): Promise<{ received: string; ms: number }> {
  let received = '';
  socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
  return new Promise((resolve) => socket.once('close', () => resolve({ received, ms: Date.now() - since })));
}
