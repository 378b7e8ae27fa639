/**
 * vitest globalSetup of the integration project: before any test file runs, every server of the
 * local stack must answer. Integration tests never skip because a server is missing: a stack that
 * is down fails the run at once, naming each server that is down.
 *
 * Checks (all in parallel, a few seconds at most): Redis answers PING; every Sentinel answers and
 * knows the master of every shard group; MariaDB primary and replica send their handshake; the
 * Kafka broker and its controller accept connections; etcd reports itself healthy; kube-apiserver
 * answers /readyz with "ok" (TLS verified with the stack's CA, admin token); Jaeger's query API
 * answers.
 */
import { Socket } from 'node:net';

import { kubeApiReadyz, kubeApiServer, loadKubeConfig } from './testing/kube.js';
import { stack } from './testing/stack-control.js';

const TIMEOUT_MS = 3000;
const host = '127.0.0.1';

interface Check {
  name: string;
  port: number;
  /** Resolves when the server answered as expected; rejects with the reason otherwise. */
  probe: () => Promise<void>;
}

/**
 * Connect, optionally send a request, and resolve with what arrived once `done(received)` is true.
 * Rejects on refusal, close, or timeout (a frozen server accepts the connection but never answers).
 */
function talk(port: number, request: string | null, done: (received: string) => boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = new Socket();
    let received = '';
    const finish = (err: Error | null): void => {
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(received);
    };
    const timer = setTimeout(() => finish(new Error(`no answer within ${TIMEOUT_MS} ms`)), TIMEOUT_MS);
    socket.once('error', (err: NodeJS.ErrnoException) => finish(new Error(err.code ?? err.message)));
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
      if (done(received)) finish(null);
    });
    socket.once('close', () => finish(new Error(`connection closed after ${JSON.stringify(received)}`)));
    socket.connect(port, host, () => {
      if (request === null) {
        if (done('')) finish(null);
      } else {
        socket.write(request);
      }
    });
  });
}

/** A Redis command as RESP array of bulk strings. */
function resp(...args: string[]): string {
  return `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
}

async function redisPing(port: number): Promise<void> {
  const answer = await talk(port, resp('PING'), (r) => r.includes('\r\n'));
  if (!answer.startsWith('+PONG')) throw new Error(`PING answered ${JSON.stringify(answer.trim())}`);
}

async function sentinelKnowsMasters(port: number): Promise<void> {
  await redisPing(port);
  for (const shard of stack.redis.shards) {
    const answer = await talk(
      port,
      resp('SENTINEL', 'get-master-addr-by-name', shard.name),
      (r) =>
        // *2 $9 127.0.0.1 $4 6379 (4 CRLF-terminated lines after the header), or a nil (*-1)
        r.startsWith('*-1') || r.startsWith('-') || r.split('\r\n').length >= 6,
    );
    if (!answer.startsWith('*2')) {
      throw new Error(`does not know the master of ${shard.name} (${JSON.stringify(answer.trim())})`);
    }
  }
}

async function mariadbGreets(port: number): Promise<void> {
  // The server speaks first: a handshake packet (protocol 10) with its version string.
  const greeting = await talk(port, null, (r) => r.length >= 5);
  if (greeting.charCodeAt(4) === 0xff) throw new Error('refused the connection (error packet)');
}

async function tcpOpen(port: number): Promise<void> {
  await talk(port, null, () => true);
}

async function etcdHealthy(port: number): Promise<void> {
  const answer = await talk(port, 'GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n', (r) => r.includes('}'));
  if (!answer.includes('"health":"true"')) {
    throw new Error(`/health answered ${JSON.stringify(answer.split('\r\n\r\n')[1] ?? answer)}`);
  }
}

async function jaegerAnswers(port: number): Promise<void> {
  const answer = await talk(port, 'GET /api/services HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n', (r) =>
    r.includes('}'),
  );
  if (!answer.includes('"data"')) {
    throw new Error(`/api/services answered ${JSON.stringify(answer.split('\r\n\r\n')[1] ?? answer)}`);
  }
}

function checks(): Check[] {
  const list: Check[] = [];
  for (const shard of stack.redis.shards) {
    for (const port of shard.ports) {
      list.push({ name: `redis-${port}`, port, probe: () => redisPing(port) });
    }
  }
  for (const s of stack.redis.sentinels) {
    list.push({ name: `sentinel-${s.port}`, port: s.port, probe: () => sentinelKnowsMasters(s.port) });
  }
  list.push({ name: 'mariadb-primary', port: stack.mysql.primary.port, probe: () => mariadbGreets(3306) });
  list.push({ name: 'mariadb-replica', port: stack.mysql.replica.port, probe: () => mariadbGreets(3307) });
  list.push({ name: 'kafka', port: 9092, probe: () => tcpOpen(9092) });
  list.push({ name: 'kafka (controller)', port: 9093, probe: () => tcpOpen(9093) });
  list.push({ name: 'etcd', port: 2379, probe: () => etcdHealthy(2379) });
  list.push({
    name: 'kube-apiserver',
    port: kubeApiServer.port,
    probe: () => kubeApiReadyz(loadKubeConfig(), TIMEOUT_MS),
  });
  list.push({ name: 'jaeger', port: 16686, probe: () => jaegerAnswers(16686) });
  return list;
}

export default async function setup(): Promise<void> {
  const all = checks();
  const results = await Promise.allSettled(all.map((c) => c.probe()));
  const down: string[] = [];
  results.forEach((r, i) => {
    const c = all[i]!;
    if (r.status === 'rejected') {
      const reason = r.reason instanceof Error ? r.reason.message : String(r.reason);
      down.push(`  - ${c.name} (${host}:${c.port}): ${reason}`);
    }
  });
  if (down.length > 0) {
    throw new Error(
      `The local stack is not running; integration tests need every server:\n${down.join('\n')}\n` +
        'Start it with: hack/stack.sh up (or make test). Status: hack/stack.sh status; ' +
        'logs: hack/stack.sh logs <name>.',
    );
  }
}
