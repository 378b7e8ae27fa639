/**
 * Disrupt and restore the servers of the local stack (hack/stack.sh) from integration tests.
 *
 *   import { stack, stopServer, startServer } from '../../../hack/testing/stack-control.js';
 *
 *   await stopServer('redis-6379', 'KILL');   // kill -9 a Redis primary (Sentinel promotes 6380)
 *   await startServer('redis-6379');          // back, as a replica of whoever is master now
 *   await stopServer('kafka', 'STOP');        // freeze the broker (SIGSTOP): connections hang
 *   await startServer('kafka');               // SIGCONT, waits until it answers again
 *   await freezeServer('kafka');              // SIGSTOP sent at once (exact timing) ...
 *   await resumeServer('kafka');              // ... SIGCONT + wait; afterAll: resumeFrozenServers()
 *
 * Server names: `redis-<port>` (6379..), `sentinel-<port>` (26379..26381), `mariadb-primary`,
 * `mariadb-replica`, `kafka`, `etcd`, `kube-apiserver` (API clients: ./kube.ts), `jaeger`. Every function
 * shells out to hack/stack.sh with a timeout and rejects with the script's own message (which
 * names the log file to read) when it fails.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const stackScript = fileURLToPath(new URL('../stack.sh', import.meta.url));

export interface HostPort {
  host: string;
  port: number;
}

export interface MysqlEndpoint extends HostPort {
  user: string;
  password: string;
}

export interface RedisShardGroup {
  /** Sentinel master name, also the shard name of the CounterShard spec. */
  name: string;
  /** [default primary, default replica]; after a failover the roles are swapped (ask Sentinel). */
  ports: [number, number];
}

const host = '127.0.0.1';
const redisShardCount = Number(process.env['HS_REDIS_SHARDS'] ?? '3');

/** Where every server of the local stack listens (DESIGN §5). */
export const stack = {
  redis: {
    sentinels: [26379, 26380, 26381].map((port): HostPort => ({ host, port })),
    shards: Array.from({ length: redisShardCount }, (_, n): RedisShardGroup => ({
      name: `shard-${n}`,
      ports: [6379 + 2 * n, 6380 + 2 * n],
    })),
  },
  mysql: {
    primary: { host, port: 3306, user: 'hyperscale', password: 'hyperscale' } satisfies MysqlEndpoint,
    replica: { host, port: 3307, user: 'hyperscale', password: 'hyperscale' } satisfies MysqlEndpoint,
    /** Created by `hack/stack.sh up`; tests usually create their own database per file. */
    database: 'hyperscale',
  },
  kafka: {
    brokers: [`${host}:9092`],
    topics: ['likes.events.v1', 'counters.deltas.v1', 'uniques.events.v1'],
    partitions: Number(process.env['HS_KAFKA_PARTITIONS'] ?? '6'),
  },
  jaeger: {
    /** OTLP/gRPC `host:port` (what a collector forwards to); OTLP/HTTP is on 4318. */
    otlpGrpc: `${host}:4317`,
    /** The query API (/api/services, /api/traces). */
    query: `http://${host}:16686`,
  },
} as const;

export type StopSignal = 'KILL' | 'TERM' | 'STOP';

/** Every server name of the stack, in start order. */
export function serverNames(): string[] {
  return [
    ...stack.redis.shards.flatMap((s) => s.ports.map((p) => `redis-${p}`)),
    ...stack.redis.sentinels.map((s) => `sentinel-${s.port}`),
    'mariadb-primary',
    'mariadb-replica',
    'kafka',
    'etcd',
    'kube-apiserver',
    'jaeger',
  ];
}

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

function run(args: string[], timeoutMs: number): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    execFile(
      'bash',
      [stackScript, ...args],
      { cwd: repoRoot, timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 4 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== 'number') {
          // not an exit status: timeout (killed) or failure to spawn
          const why = error.killed ? `timed out after ${timeoutMs} ms` : error.message;
          reject(new Error(`hack/stack.sh ${args.join(' ')}: ${why}\n${stderr}`.trimEnd()));
          return;
        }
        resolve({ code: error ? Number(error.code) : 0, stdout, stderr });
      },
    );
  });
}

async function runOk(args: string[], timeoutMs: number): Promise<string> {
  const r = await run(args, timeoutMs);
  if (r.code !== 0) {
    throw new Error(
      `hack/stack.sh ${args.join(' ')} failed (exit ${r.code}):\n${r.stderr}${r.stdout}`.trimEnd(),
    );
  }
  return r.stdout;
}

/**
 * Stop a server this stack started. TERM (default) waits for a clean exit (a server that does not
 * exit within 40 s gets SIGKILL); KILL is `kill -9` and waits until the process is gone; STOP
 * freezes it with SIGSTOP (the port stays open, requests hang) until `startServer`.
 * A server that is not running is not an error.
 */
export async function stopServer(name: string, signal: StopSignal = 'TERM'): Promise<void> {
  await runOk(['stop', name, signal], 60_000);
}

/**
 * Start a stopped server (or SIGCONT a frozen one) and wait until it is ready: Redis answers
 * with the role Sentinel expects (a returning old primary comes back as replica of the current
 * master); Sentinel knows every master; MariaDB answers and, for the replica, replicates again
 * (replication threads are (re)started and caught up); Kafka answers and has every topic.
 * A server that already runs is left as it is (only waited for).
 */
export async function startServer(name: string): Promise<void> {
  await runOk(['start', name], 120_000);
}

/** stopServer(name, 'TERM') + startServer(name). */
export async function restartServer(name: string): Promise<void> {
  await runOk(['restart', name], 180_000);
}

/** PID of the running server, or null when it is not running. */
export async function serverPid(name: string): Promise<number | null> {
  const r = await run(['pid', name], 10_000);
  if (r.code !== 0) return null;
  const pid = Number(r.stdout.trim());
  return Number.isInteger(pid) && pid > 0 ? pid : null;
}

const frozenByThisProcess = new Map<string, number>();

/**
 * Freezes a running server with SIGSTOP right now (its port stays open, requests hang): sent
 * directly rather than through hack/stack.sh, so a test knows the moment to the millisecond.
 * Undo with {@link resumeServer} in `finally`, and call {@link resumeFrozenServers} in `afterAll`.
 */
export async function freezeServer(name: string): Promise<void> {
  const pid = await serverPid(name);
  if (pid === null) throw new Error(`${name} is not running; start it with hack/stack.sh up`);
  process.kill(pid, 'SIGSTOP');
  frozenByThisProcess.set(name, pid);
}

/** SIGCONT to a server {@link freezeServer} froze, then waits until it is ready ({@link startServer}). */
export async function resumeServer(name: string): Promise<void> {
  const pid = frozenByThisProcess.get(name);
  frozenByThisProcess.delete(name);
  if (pid !== undefined) process.kill(pid, 'SIGCONT');
  await startServer(name);
}

/**
 * Freezes the current master of a Redis shard group for `ms`, then resumes it and waits until it
 * is ready. Below Sentinel's down-after (1.5 s here) the same server stays master: what it
 * received while frozen runs when it resumes, after the clients gave up on it. Returns its port.
 */
export async function freezeRedisMaster(shard: string, ms: number): Promise<number> {
  const { port } = await currentRedisMaster(shard);
  await freezeServer(`redis-${port}`);
  try {
    await new Promise((resolve) => setTimeout(resolve, ms));
  } finally {
    await resumeServer(`redis-${port}`);
  }
  return port;
}

/** Resumes every server this process froze and did not resume yet (for `afterAll`). */
export async function resumeFrozenServers(): Promise<void> {
  for (const name of [...frozenByThisProcess.keys()]) await resumeServer(name);
}

/**
 * Whether the server runs, is not frozen and answers as it should (Redis: with the role Sentinel
 * expects and the replication link up; MariaDB replica: both replication threads running;
 * Kafka: every topic present).
 */
export async function isHealthy(name: string): Promise<boolean> {
  const r = await run(['health', name], 30_000);
  return r.code === 0;
}

/** The current master of a Redis shard group as the Sentinels see it. */
export async function currentRedisMaster(shard: string): Promise<HostPort> {
  const out = await runOk(['master', shard], 15_000);
  return { host, port: Number(out.trim()) };
}

/**
 * Put every Redis shard group back in its default orientation (even port = master) with
 * SENTINEL FAILOVER where a failover swapped the roles. Waits until done.
 */
export async function failbackRedis(): Promise<void> {
  await runOk(['failback'], 120_000);
}

/**
 * `hack/stack.sh up`: restart whatever is down, resume what is frozen, restart stopped MariaDB
 * replication threads, re-create missing topics. Useful in an afterAll of a disruptive test file.
 */
export async function ensureStackUp(): Promise<void> {
  await runOk(['up'], 240_000);
}

/** The output of `hack/stack.sh status` (one line per server); never throws for unhealthy servers. */
export async function stackStatus(): Promise<string> {
  const r = await run(['status'], 60_000);
  return r.stdout;
}
