/**
 * Shared helpers of the writer's integration tests (real MariaDB + Kafka of hack/stack.sh). Each
 * test file calls {@link createTestBed}: its own database `hs_test_<random>` (migrated), its own
 * topic (+ `.dlq`) and group ids, all removed by `bed.cleanup()`.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import {
  createDatabase,
  createKafka,
  createLogger,
  createMysqlPools,
  deleteTopics,
  dropDatabase,
  ensureTopics,
  migrate,
  withDatabase,
  type LikeEvent,
  type MysqlPool,
  type MysqlPools,
  type Registry,
} from '@hyperscale/platform';
import { stack } from '../../../hack/testing/stack-control.js';
import { freePort } from '../../../hack/testing/ports.js';
export { freePort };

export const logger = createLogger({
  service: 'writer-test',
  level: process.env['HS_TEST_LOG_LEVEL'] ?? 'silent',
});
export const BROKERS = [...stack.kafka.brokers];
const { host, port, user, password } = stack.mysql.primary;
export const ADMIN_URL = `mysql://${user}:${password}@${host}:${port}/hyperscale`;

export type Kafka = ReturnType<typeof createKafka>;

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export async function waitFor(
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  intervalMs = 100,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await sleep(intervalMs);
  }
  return check();
}

export function suffix(): string {
  return `${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
}

export function testKafka(clientId: string): Kafka {
  return createKafka({
    clientId,
    brokers: BROKERS,
    connectionTimeoutMs: 1000,
    requestTimeoutMs: 5000,
    logger,
  });
}

/** Sum of a counter's values on `registry` whose labels match `labels`. */
export async function metricValue(
  registry: Registry,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (metric === undefined) return 0;
  const { values } = await metric.get();
  return values
    .filter((v) => Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want))
    .reduce((sum, v) => sum + v.value, 0);
}

/** One test file's database, topic and Kafka client. */
export interface TestBed {
  database: string;
  url: string;
  pools: MysqlPools;
  pool: MysqlPool;
  topic: string;
  dlqTopic: string;
  partitions: number;
  kafka: Kafka;
  groupId(name: string): string;
  cleanup(): Promise<void>;
}

export async function createTestBed(name: string, partitions: number): Promise<TestBed> {
  const id = suffix();
  const database = `hs_test_${id}`;
  const admin = createMysqlPools({
    primaryUrl: ADMIN_URL,
    connectionLimit: 1,
    connectTimeoutMs: 2000,
    queryTimeoutMs: 10_000,
  });
  await createDatabase(admin.primary, database);
  await admin.close();
  const url = withDatabase(ADMIN_URL, database);
  await migrate({ url, logger });
  const pools = createMysqlPools({
    primaryUrl: url,
    connectionLimit: 4,
    connectTimeoutMs: 2000,
    queryTimeoutMs: 10_000,
  });
  const topic = `hs-test.writer-${name}.${id}`;
  const dlqTopic = `${topic}.dlq`;
  const kafka = testKafka(`hs-test-writer-${name}`);
  await ensureTopics(
    kafka,
    [
      { topic, numPartitions: partitions },
      { topic: dlqTopic, numPartitions: 1 },
    ],
    30_000,
  );
  const groups: string[] = [];
  return {
    database,
    url,
    pools,
    pool: pools.primary,
    topic,
    dlqTopic,
    partitions,
    kafka,
    groupId(group: string) {
      const g = `hs-test-writer-${name}-${group}-${id}`;
      groups.push(g);
      return g;
    },
    async cleanup() {
      await pools.close();
      await deleteTopics(kafka, [topic, dlqTopic], 30_000).catch(() => undefined);
      const kafkaAdmin = kafka.admin();
      await kafkaAdmin.connect();
      try {
        await kafkaAdmin.deleteGroups(groups).catch(() => undefined);
      } finally {
        await kafkaAdmin.disconnect();
      }
      const dropper = createMysqlPools({
        primaryUrl: ADMIN_URL,
        connectionLimit: 1,
        connectTimeoutMs: 2000,
        queryTimeoutMs: 30_000,
      });
      await dropDatabase(dropper.primary, database);
      await dropper.close();
    },
  };
}

/** Deterministic pseudo-random numbers (tests must be reproducible). */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

let clock = Date.UTC(2026, 10, 21, 10, 0, 0);

/** A like event with a fresh id and a strictly increasing time (ms). */
export function likeEvent(type: 'like' | 'unlike', postId: string, userId: string): LikeEvent {
  clock += 1;
  return { eventId: randomUUID(), type, postId, userId, at: new Date(clock).toISOString() };
}

/**
 * `count` random likes/unlikes over `posts` posts and `users` users (70 % likes, so the state is
 * not empty), with many repeats of the same pair: like→like, unlike of nothing, like→unlike→like.
 */
export function randomEvents(count: number, posts: number, users: number, seed: number): LikeEvent[] {
  const random = rng(seed);
  return Array.from({ length: count }, () =>
    likeEvent(
      random() < 0.7 ? 'like' : 'unlike',
      `post-${Math.floor(random() * posts)}`,
      `user-${Math.floor(random() * users)}`,
    ),
  );
}

/** A message to produce: a like event, or raw bytes (poison) under a key. */
export interface OutMessage {
  key: string;
  value: string | null;
}

export function asMessage(event: LikeEvent): OutMessage {
  return { key: event.postId, value: JSON.stringify(event) };
}

/**
 * Produces in order with an idempotent producer, key = postId (per-post order, like the like
 * service), `chunk` messages per request. Returns when everything is acknowledged.
 */
export async function produce(
  kafka: Kafka,
  topic: string,
  messages: readonly OutMessage[],
  chunk = 500,
): Promise<void> {
  const producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
  });
  await producer.connect();
  try {
    for (let i = 0; i < messages.length; i += chunk) {
      await producer.send({
        topic,
        acks: -1,
        messages: messages.slice(i, i + chunk).map((m) => ({ key: m.key, value: m.value })),
      });
    }
  } finally {
    await producer.disconnect();
  }
}

/** Expected MySQL state after applying `events` one by one (the order they were produced in). */
export interface ExpectedState {
  /** `post/user` → created_at ISO of the like that created the row. */
  likes: Map<string, string>;
  /** post → like count (posts whose count is 0 omitted). */
  counts: Map<string, number>;
}

export function expectedState(events: readonly LikeEvent[]): ExpectedState {
  const likes = new Map<string, string>();
  for (const e of events) {
    const key = `${e.postId}/${e.userId}`;
    if (e.type === 'like' && !likes.has(key)) likes.set(key, new Date(e.at).toISOString());
    if (e.type === 'unlike') likes.delete(key);
  }
  const counts = new Map<string, number>();
  for (const key of likes.keys()) {
    const post = key.slice(0, key.indexOf('/'));
    counts.set(post, (counts.get(post) ?? 0) + 1);
  }
  return { likes, counts };
}

/** What MySQL holds now. */
export interface ActualState {
  likes: Map<string, string>;
  /** post_stats rows with a non-zero count. */
  counts: Map<string, number>;
  /** Posts where post_stats.like_count ≠ COUNT(*) of like_records (must stay empty). */
  invariantViolations: string[];
}

export async function actualState(pool: MysqlPool): Promise<ActualState> {
  const rows = await pool.select<{ post_id: string; user_id: string; created_at: Date }>(
    'SELECT post_id, user_id, created_at FROM like_records',
  );
  const likes = new Map(rows.map((r) => [`${r.post_id}/${r.user_id}`, r.created_at.toISOString()]));
  const stats = await pool.select<{ post_id: string; like_count: string }>(
    'SELECT post_id, like_count FROM post_stats',
  );
  const counts = new Map<string, number>();
  for (const s of stats) if (Number(s.like_count) !== 0) counts.set(s.post_id, Number(s.like_count));
  const violations = await pool.select<{ post_id: string }>(
    `SELECT s.post_id FROM post_stats s LEFT JOIN (SELECT post_id, COUNT(*) AS n FROM like_records GROUP BY post_id) c
       ON c.post_id = s.post_id WHERE s.like_count <> COALESCE(c.n, 0)
     UNION
     SELECT c.post_id FROM (SELECT post_id, COUNT(*) AS n FROM like_records GROUP BY post_id) c
       LEFT JOIN post_stats s ON s.post_id = c.post_id WHERE s.post_id IS NULL`,
  );
  return { likes, counts, invariantViolations: violations.map((v) => v.post_id) };
}

/** Stored next offsets per partition for a group. */
export async function storedOffsets(
  pool: MysqlPool,
  groupId: string,
  topic: string,
): Promise<Map<number, bigint>> {
  const rows = await pool.select<{ p: number; next_offset: string }>(
    'SELECT `partition` AS p, next_offset FROM consumer_offsets WHERE group_id = ? AND topic = ?',
    [groupId, topic],
  );
  return new Map(rows.map((r) => [Number(r.p), BigInt(r.next_offset)]));
}

/** High watermark per partition. */
export async function endOffsets(kafka: Kafka, topic: string): Promise<Map<number, bigint>> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    return new Map(offsets.map((o) => [o.partition, BigInt(o.high)]));
  } finally {
    await admin.disconnect();
  }
}

/** Kafka's committed offsets of a group (-1 = none). */
export async function kafkaCommitted(
  kafka: Kafka,
  groupId: string,
  topic: string,
): Promise<Map<number, bigint>> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const [entry] = await admin.fetchOffsets({ groupId, topics: [topic] });
    return new Map((entry?.partitions ?? []).map((p) => [p.partition, BigInt(p.offset)]));
  } finally {
    await admin.disconnect();
  }
}

/** True when MySQL's stored offsets reached the end of every non-empty partition. */
export async function drained(
  pool: MysqlPool,
  kafka: Kafka,
  groupId: string,
  topic: string,
): Promise<boolean> {
  const [stored, ends] = await Promise.all([storedOffsets(pool, groupId, topic), endOffsets(kafka, topic)]);
  for (const [partition, end] of ends) {
    if (end > 0n && (stored.get(partition) ?? 0n) < end) return false;
  }
  return true;
}

export async function appliedCount(pool: MysqlPool, groupId: string, topic: string): Promise<bigint> {
  let sum = 0n;
  for (const v of (await storedOffsets(pool, groupId, topic)).values()) sum += v;
  return sum;
}

// ---------------------------------------------------------------------------------------------
// The real writer process

const packageDir = fileURLToPath(new URL('..', import.meta.url));
const mainJs = fileURLToPath(new URL('../dist/main.js', import.meta.url));

/** Compiles the writer (and the platform it references) as a deployment would run it. */
export function buildWriter(): void {
  execFileSync(
    process.execPath,
    [fileURLToPath(import.meta.resolve('typescript/bin/tsc')), '-b', packageDir],
    {
      stdio: 'inherit',
      timeout: 180_000,
    },
  );
}

export interface WriterProcess {
  child: ChildProcess;
  metricsPort: number;
  output(): string;
  /** Resolves with the exit code (null when killed by a signal) and the signal. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const running = new Set<ChildProcess>();

/** Starts `node dist/main.js` with the writer's env pointing at the test bed. */
export async function startWriter(
  bed: TestBed,
  groupId: string,
  extraEnv: Record<string, string> = {},
): Promise<WriterProcess> {
  const metricsPort = await freePort();
  let output = '';
  const child = spawn(process.execPath, [mainJs], {
    env: {
      PATH: process.env['PATH'] ?? '',
      SERVICE_NAME: 'writer-test',
      LOG_LEVEL: 'info',
      METRICS_HOST: '127.0.0.1',
      METRICS_PORT: String(metricsPort),
      SHUTDOWN_DELAY_MS: '0',
      SHUTDOWN_TIMEOUT_MS: '15000',
      MYSQL_PRIMARY_URL: bed.url,
      MYSQL_MIGRATE_ON_START: 'true',
      KAFKA_BROKERS: BROKERS.join(','),
      WRITER_GROUP_ID: groupId,
      WRITER_LIKES_TOPIC: bed.topic,
      // This writer serves one test database: it must not consume the shared counter topics.
      WRITER_COUNTERS_TOPIC: 'none',
      WRITER_UNIQUES_TOPIC: 'none',
      WRITER_SESSION_TIMEOUT_MS: '6000',
      WRITER_HEARTBEAT_INTERVAL_MS: '500',
      ...extraEnv,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      running.delete(child);
      resolve({ code, signal });
    }),
  );
  return { child, metricsPort, output: () => output, exited };
}

/** Waits until /readyz answers 200 (consumer joined, MySQL answers). */
export async function waitWriterReady(writer: WriterProcess, timeoutMs = 30_000): Promise<void> {
  const ok = await waitFor(async () => {
    if (writer.child.exitCode !== null || writer.child.signalCode !== null) return true;
    try {
      const response = await fetch(`http://127.0.0.1:${writer.metricsPort}/readyz`, {
        signal: AbortSignal.timeout(1000),
      });
      return response.status === 200;
    } catch {
      return false;
    }
  }, timeoutMs);
  if (!ok || writer.child.exitCode !== null || writer.child.signalCode !== null) {
    throw new Error(`writer did not become ready:\n${writer.output()}`);
  }
}

/** Reads one writer metric (summed over labels matching `labels`) from the process's /metrics. */
export async function scrapeMetric(
  writer: WriterProcess,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const response = await fetch(`http://127.0.0.1:${writer.metricsPort}/metrics`, {
    signal: AbortSignal.timeout(2000),
  });
  const text = await response.text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const matches = Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`));
    if (matches) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/** SIGKILLs every writer process a test left running (afterAll safety net). */
export function killAllWriters(): void {
  for (const child of running) child.kill('SIGKILL');
}
