/**
 * Shared set-up of the like integration tests, against the REAL local stack: a database
 * `hs_test_<random>` (created + migrated, dropped at the end), a topic of its own (6 partitions,
 * deleted at the end), a post-id prefix of its own (keys deleted at the end), Redis through the
 * Sentinels, and helpers to run the real writer (`services/writer/dist/main.js`) and the real like
 * process (`services/like/dist/main.js`) against them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { Admin, Kafka } from 'kafkajs';
import { pino, type Logger } from 'pino';
import { Registry } from 'prom-client';
import type { FastifyInstance } from 'fastify';
import {
  GroupCommitProducer,
  MysqlRouter,
  RedisShardClient,
  ReplicaLagMonitor,
  TokenVerifier,
  createDatabase,
  createKafka,
  createMysqlPools,
  deleteTopics,
  dropDatabase,
  ensureTopics,
  migrate,
  signDevToken,
  waitForReplicaCatchUp,
  withDatabase,
  type MysqlPools,
} from '@hyperscale/platform';
import { stack } from '../../../hack/testing/stack-control.js';
import { buildApp, type LikeAppSettings } from '../src/app.js';
import { postKeys, slotOf as slotOfPost } from '../src/keys.js';
import { LikeStore, type LikeStoreOptions } from '../src/like-store.js';
import { freePort } from '../../../hack/testing/ports.js';
import { cleanShard } from '../../../hack/testing/redis-cleanup.js';
export { freePort };

export const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));
export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
export const logger: Logger = pino({ level: process.env['HS_TEST_LOG_LEVEL'] ?? 'silent' });

const { primary, replica } = stack.mysql;
export const BASE_PRIMARY_URL = `mysql://${primary.user}:${primary.password}@${primary.host}:${primary.port}/${stack.mysql.database}`;
export const BASE_REPLICA_URL = `mysql://${replica.user}:${replica.password}@${replica.host}:${replica.port}/${stack.mysql.database}`;
export const BROKERS = [...stack.kafka.brokers];
export const SENTINELS = stack.redis.sentinels.map(({ host, port }) => ({ host, port }));
export const MASTER_NAMES = stack.redis.shards.map((s) => s.name);

export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      if (await check()) return;
    } catch (err) {
      // A transient failure of the probe itself (e.g. a statement deadline) is retried.
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`, { cause: lastError });
    }
    await sleep(50);
  }
}

export function storeOptions(
  topic: string,
  groupId: string,
  extra: Partial<LikeStoreOptions> = {},
): LikeStoreOptions {
  return {
    topic,
    writerGroupId: groupId,
    warmWaitMs: 2_000,
    directWriteWaitMs: 1_000,
    cacheTtlMs: 3_600_000,
    degradedTtlMs: 30_000,
    redisBreaker: { consecutiveFailures: 5, halfOpenAfterMs: 1_000 },
    kafkaTimeoutMs: 3_500,
    kafkaBreaker: { consecutiveFailures: 3, halfOpenAfterMs: 2_000 },
    // On, as in the service's defaults: every test of this package reads through the cache.
    readCache: { maxEntries: 100_000, maxStalenessMs: 2_000 },
    ...extra,
  };
}

/** One running child process (writer or like) with its captured output. */
export interface Child {
  process: ChildProcess;
  output: string[];
  metricsPort: number;
  httpPort?: number;
  /** SIGKILL and wait for the exit. */
  kill9(): Promise<void>;
  /** SIGTERM and wait for the exit (SIGKILL after `ms`); resolves with the exit code. */
  stop(ms?: number): Promise<number | null>;
  exited(): boolean;
}

function spawnNode(
  script: string,
  env: Record<string, string>,
  metricsPort: number,
  httpPort?: number,
): Child {
  const child = spawn(process.execPath, ['--enable-source-maps', script], {
    cwd: repoRoot,
    env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  const keep = (chunk: Buffer) => {
    output.push(chunk.toString());
    if (output.length > 400) output.splice(0, output.length - 400);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let exitCode: number | null | undefined;
  const exit = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      exitCode = code;
      resolve(code);
    }),
  );
  return {
    process: child,
    output,
    metricsPort,
    ...(httpPort === undefined ? {} : { httpPort }),
    exited: () => exitCode !== undefined,
    async kill9() {
      if (exitCode === undefined) child.kill('SIGKILL');
      await exit;
    },
    async stop(ms = 15_000) {
      if (exitCode !== undefined) return exitCode;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), ms);
      const code = await exit;
      clearTimeout(timer);
      return code;
    },
  };
}

async function waitReady(child: Child, timeoutMs = 30_000): Promise<void> {
  await waitFor(
    async () => {
      if (child.exited()) return true;
      try {
        const res = await fetch(`http://127.0.0.1:${child.metricsPort}/readyz`, {
          signal: AbortSignal.timeout(1_000),
        });
        return res.ok;
      } catch {
        return false;
      }
    },
    timeoutMs,
    'readiness',
  );
  if (child.exited()) throw new Error(`process exited during start-up:\n${child.output.join('')}`);
}

/** Everything one test file uses; `close()` removes what it created. */
export interface TestContext {
  runId: string;
  database: string;
  primaryUrl: string;
  replicaUrl: string;
  topic: string;
  groupId: string;
  secret: string;
  adminToken: string;
  registry: Registry;
  pools: MysqlPools;
  monitor: ReplicaLagMonitor;
  router: MysqlRouter;
  shards: RedisShardClient[];
  kafka: Kafka;
  admin: Admin;
  producer: GroupCommitProducer;
  store: LikeStore;
  app: FastifyInstance;
  /** A post id unique to this run. */
  post(name: string): string;
  token(userId: string, ttlSeconds?: number): Promise<string>;
  auth(userId: string): Promise<{ authorization: string }>;
  /** Sum of the topic's high watermarks (messages ever produced to it). */
  topicEnd(): Promise<bigint>;
  /** Redis view of a post (from the shard's current master): null when cold. */
  redisState(postId: string): Promise<{ count: number; users: string[] } | null>;
  redisExists(postId: string): Promise<number>;
  mysqlState(postId: string): Promise<{ count: number; rows: number; users: string[] }>;
  mysqlRowCount(): Promise<number>;
  /** Starts the real writer on this file's database, topic and group. */
  startWriter(extraEnv?: Record<string, string>): Promise<Child>;
  /** Waits until the writer group's stored offsets reach every partition's high watermark. */
  waitDrained(timeoutMs?: number): Promise<void>;
  /** Starts the real like process on this file's database, topic and group. */
  startLike(extraEnv?: Record<string, string>): Promise<Child>;
  /** Builds another app (another "pod") on the same clients with other settings. */
  buildApp(settings?: Partial<LikeAppSettings>, store?: LikeStore): Promise<FastifyInstance>;
  close(): Promise<void>;
}

export function shardClients(registry: Registry, name: string): RedisShardClient[] {
  return MASTER_NAMES.map(
    (masterName) =>
      new RedisShardClient(
        {
          shard: masterName,
          sentinels: SENTINELS,
          masterName,
          commandTimeoutMs: 500,
          connectTimeoutMs: 1_000,
          connectionName: `hs-test-like-${name}`,
        },
        { logger, registry },
      ),
  );
}

export function defaultSettings(ctx: {
  topic: string;
  groupId: string;
  adminToken: string;
}): LikeAppSettings {
  return {
    bodyLimitBytes: 65_536,
    requestTimeoutMs: 10_000,
    adminToken: ctx.adminToken,
    devMode: false,
    rateLimits: { perIp: 0, perUser: 0, windowMs: 60_000, syncMs: 100 },
    corsOrigins: [],
    store: storeOptions(ctx.topic, ctx.groupId),
  };
}

/** Creates the database, topic, clients and app of one test file. */
export async function createTestContext(
  name: string,
  options: { settings?: Partial<LikeAppSettings>; partitions?: number } = {},
): Promise<TestContext> {
  const runId = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
  const database = `hs_test_like_${name.replace(/[^A-Za-z0-9_]/g, '_')}_${runId}`;
  const primaryUrl = withDatabase(BASE_PRIMARY_URL, database);
  const replicaUrl = withDatabase(BASE_REPLICA_URL, database);
  const topic = `hs-test.like-${name}.${runId}`;
  const groupId = `hs-test-writer-${name}-${runId}`;
  const secret = randomBytes(32).toString('hex');
  const adminToken = randomBytes(16).toString('hex');
  const registry = new Registry();

  const bootstrap = createMysqlPools({
    primaryUrl: BASE_PRIMARY_URL,
    connectionLimit: 2,
    connectTimeoutMs: 5_000,
    queryTimeoutMs: 10_000,
  });
  await createDatabase(bootstrap.primary, database);
  await bootstrap.close();
  await migrate({ url: primaryUrl, logger });
  const pools = createMysqlPools({
    primaryUrl,
    replicaUrl,
    connectionLimit: 30,
    connectTimeoutMs: 5_000,
    queryTimeoutMs: 3_000,
    logger,
    registry,
  });
  await waitForReplicaCatchUp(pools.primary, pools.replica!, 15_000);
  const monitor = new ReplicaLagMonitor({
    primary: pools.primary,
    replica: pools.replica!,
    logger,
    registry,
    intervalMs: 200,
  });
  await monitor.start();
  const router = new MysqlRouter({ pools, replicaStatus: monitor, logger, registry });

  const kafka = createKafka({
    clientId: `hs-test-like-${name}`,
    brokers: BROKERS,
    connectionTimeoutMs: 1_000,
    requestTimeoutMs: 5_000,
    logger,
  });
  await ensureTopics(kafka, [{ topic, numPartitions: options.partitions ?? 6 }], 30_000);
  const admin = kafka.admin();
  await admin.connect();
  const producer = new GroupCommitProducer({ kafka, logger, registry, lingerMs: 2, sendTimeoutMs: 3_000 });
  await producer.connect();

  const shards = shardClients(registry, name);
  await Promise.all(shards.map((s) => s.waitUntilReady(10_000)));
  const verifier = new TokenVerifier({ hs256Secret: secret });
  const base = defaultSettings({ topic, groupId, adminToken });
  const settings = { ...base, ...options.settings, store: { ...base.store, ...options.settings?.store } };
  const store = new LikeStore({
    shards,
    router,
    producer,
    highWatermarks: (t) => admin.fetchTopicOffsets(t),
    logger,
    registry,
    options: settings.store,
  });
  const appDeps = {
    logger,
    registry,
    shards,
    router,
    producer,
    highWatermarks: (t: string) => admin.fetchTopicOffsets(t),
    verifier,
  };
  const app = await buildApp({ ...appDeps, settings, store });
  await app.ready();
  const extraApps: FastifyInstance[] = [];
  const children: Child[] = [];
  const prefix = `t${runId}-`;

  const ctx: TestContext = {
    runId,
    database,
    primaryUrl,
    replicaUrl,
    topic,
    groupId,
    secret,
    adminToken,
    registry,
    pools,
    monitor,
    router,
    shards,
    kafka,
    admin,
    producer,
    store,
    app,
    post: (postName) => `${prefix}${postName}`,
    token: (userId, ttlSeconds) =>
      signDevToken({ secret, userId, ...(ttlSeconds === undefined ? {} : { ttlSeconds }) }),
    async auth(userId) {
      return { authorization: `Bearer ${await ctx.token(userId)}` };
    },
    async topicEnd() {
      const offsets = await admin.fetchTopicOffsets(topic);
      return offsets.reduce((sum, o) => sum + BigInt(o.high), 0n);
    },
    async redisState(postId) {
      const shard = shardFor(shards, postId);
      const keys = postKeys(postId);
      const [count, users] = await Promise.all([
        shard.redis.get(keys.count),
        shard.redis.smembers(keys.users),
      ]);
      return count === null ? null : { count: Number(count), users: users.sort() };
    },
    async redisExists(postId) {
      const keys = postKeys(postId);
      return shardFor(shards, postId).redis.exists(keys.users, keys.count, keys.gen);
    },
    async mysqlState(postId) {
      const [stats] = await pools.primary.select<{ like_count: string }>(
        'SELECT like_count FROM post_stats WHERE post_id = ?',
        [postId],
      );
      const rows = await pools.primary.select<{ user_id: string }>(
        'SELECT user_id FROM like_records WHERE post_id = ? ORDER BY user_id',
        [postId],
      );
      return {
        count: stats === undefined ? 0 : Number(stats.like_count),
        rows: rows.length,
        users: rows.map((r) => r.user_id).sort(),
      };
    },
    async mysqlRowCount() {
      const [row] = await pools.primary.select<{ n: string }>(
        'SELECT (SELECT COUNT(*) FROM like_records) + (SELECT COUNT(*) FROM post_stats) AS n',
      );
      return Number(row?.n ?? 0);
    },
    async startWriter(extraEnv = {}) {
      const metricsPort = await freePort();
      const child = spawnNode(
        'services/writer/dist/main.js',
        {
          SERVICE_NAME: 'writer-test',
          LOG_LEVEL: process.env['HS_TEST_CHILD_LOG_LEVEL'] ?? 'warn',
          METRICS_PORT: String(metricsPort),
          METRICS_HOST: '127.0.0.1',
          MYSQL_PRIMARY_URL: primaryUrl,
          KAFKA_BROKERS: BROKERS.join(','),
          WRITER_GROUP_ID: groupId,
          WRITER_LIKES_TOPIC: topic,
          // This writer serves one test database: it must not consume the shared counter topics.
          WRITER_COUNTERS_TOPIC: 'none',
          WRITER_UNIQUES_TOPIC: 'none',
          SHUTDOWN_DELAY_MS: '0',
          WRITER_SESSION_TIMEOUT_MS: '6000',
          WRITER_HEARTBEAT_INTERVAL_MS: '500',
          ...extraEnv,
        },
        metricsPort,
      );
      children.push(child);
      await waitReady(child);
      return child;
    },
    async waitDrained(timeoutMs = 60_000) {
      await waitFor(
        async () => {
          const offsets = await admin.fetchTopicOffsets(topic);
          const rows = await pools.primary.select<{ partition: number; next_offset: string }>(
            'SELECT `partition`, next_offset FROM consumer_offsets WHERE group_id = ? AND topic = ?',
            [groupId, topic],
          );
          const position = new Map(rows.map((r) => [Number(r.partition), BigInt(r.next_offset)]));
          return offsets.every(
            (o) => BigInt(o.high) === 0n || (position.get(o.partition) ?? -1n) >= BigInt(o.high),
          );
        },
        timeoutMs,
        'the writer to drain the topic',
      );
    },
    async startLike(extraEnv = {}) {
      const metricsPort = await freePort();
      const httpPort = await freePort();
      const child = spawnNode(
        'services/like/dist/main.js',
        {
          SERVICE_NAME: 'like-test',
          LOG_LEVEL: process.env['HS_TEST_CHILD_LOG_LEVEL'] ?? 'warn',
          HTTP_HOST: '127.0.0.1',
          HTTP_PORT: String(httpPort),
          METRICS_HOST: '127.0.0.1',
          METRICS_PORT: String(metricsPort),
          REDIS_SENTINELS: SENTINELS.map((s) => `${s.host}:${s.port}`).join(','),
          REDIS_MASTER_NAMES: MASTER_NAMES.join(','),
          MYSQL_PRIMARY_URL: primaryUrl,
          MYSQL_REPLICA_URL: replicaUrl,
          KAFKA_BROKERS: BROKERS.join(','),
          LIKE_TOPIC: topic,
          WRITER_GROUP_ID: groupId,
          JWT_HS256_SECRET: secret,
          ADMIN_TOKEN: adminToken,
          RATE_LIMIT_PER_USER: '0',
          RATE_LIMIT_PER_IP: '0',
          SHUTDOWN_DELAY_MS: '0',
          ...extraEnv,
        },
        metricsPort,
        httpPort,
      );
      children.push(child);
      await waitReady(child);
      return child;
    },
    async buildApp(overrides = {}, otherStore) {
      const more = await buildApp({
        ...appDeps,
        registry: new Registry(),
        settings: { ...settings, ...overrides, store: { ...settings.store, ...overrides.store } },
        ...(otherStore === undefined ? {} : { store: otherStore }),
      });
      await more.ready();
      extraApps.push(more);
      return more;
    },
    async close() {
      await Promise.all(children.map((c) => c.stop(10_000).catch(() => undefined)));
      for (const extra of extraApps) await extra.close();
      await app.close();
      store.close();
      await producer.close();
      await admin.disconnect().catch(() => undefined);
      for (const shard of shards) await cleanShard(shard, [`like:{${prefix}*`]);
      await Promise.all(shards.map((s) => s.close()));
      await monitor.stop();
      await dropDatabase(pools.primary, database);
      await pools.close();
      await deleteTopics(kafka, [topic], 30_000).catch(() => undefined);
    },
  };
  return ctx;
}

export function shardFor(shards: readonly RedisShardClient[], postId: string): RedisShardClient {
  const index = Math.floor((slotOfPost(postId) * shards.length) / 16_384);
  return shards[index]!;
}

/** Value of a counter/gauge series matching `labels` (sum over the rest), 0 when absent. */
export async function metricValue(
  registry: Registry,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (metric === undefined) return 0;
  const { values } = await metric.get();
  return values
    .filter((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val))
    .reduce((sum, v) => sum + v.value, 0);
}
