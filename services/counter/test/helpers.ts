/**
 * Shared set-up of the counter integration tests, against the REAL local stack: a database
 * `hs_test_counter_<name>_<random>` (created + migrated, dropped at the end), a counter topic and
 * an (empty) likes topic of its own (+ DLQs, deleted at the end), a name prefix of its own (keys
 * deleted at the end), Redis through the Sentinels, a slot map FILE the test can rewrite, and the
 * real writer (`services/writer/dist/main.js`) and counter (`services/counter/dist/main.js`)
 * processes on demand.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Admin, Kafka } from 'kafkajs';
import { pino, type Logger } from 'pino';
import { Registry } from 'prom-client';
import type { FastifyInstance } from 'fastify';
import {
  GroupCommitProducer,
  MysqlRouter,
  RedisShardClient,
  TokenVerifier,
  createDatabase,
  createKafka,
  createMysqlPools,
  deleteTopics,
  dropDatabase,
  ensureTopics,
  migrate,
  signDevToken,
  withDatabase,
  type MysqlPools,
} from '@hyperscale/platform';
import { stack } from '../../../hack/testing/stack-control.js';
import { buildApp, type CounterAppSettings } from '../src/app.js';
import { CounterStore, type CounterStoreOptions } from '../src/counter-store.js';
import { counterKeys, slotOf } from '../src/keys.js';
import { SlotMap, type SlotMapDocument } from '../src/slot-map.js';
import { ACKS_KEY, SlotMapSource } from '../src/slot-map-source.js';
import { freePort } from '../../../hack/testing/ports.js';
import { cleanShard } from '../../../hack/testing/redis-cleanup.js';

export const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));
export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
export const logger: Logger = pino({ level: process.env['HS_TEST_LOG_LEVEL'] ?? 'silent' });

const { primary } = stack.mysql;
export const BASE_PRIMARY_URL = `mysql://${primary.user}:${primary.password}@${primary.host}:${primary.port}/${stack.mysql.database}`;
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
      lastError = err;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`, { cause: lastError });
    await sleep(50);
  }
}

export function storeOptions(
  topic: string,
  groupId: string,
  extra: Partial<CounterStoreOptions> = {},
): CounterStoreOptions {
  return {
    topic,
    writerGroupId: groupId,
    warmWaitMs: 2_000,
    cacheTtlMs: 3_600_000,
    degradedTtlMs: 30_000,
    redisBreaker: { consecutiveFailures: 5, halfOpenAfterMs: 1_000 },
    kafkaTimeoutMs: 3_500,
    kafkaBreaker: { consecutiveFailures: 3, halfOpenAfterMs: 2_000 },
    idempotencyTtlMs: 120_000,
    // On, as in the service's defaults: every test of this package reads through the cache.
    readCache: { maxEntries: 100_000, maxStalenessMs: 2_000 },
    ...extra,
  };
}

/** One running writer or counter process with its captured output. */
export interface Child {
  process: ChildProcess;
  output: string[];
  /** The HTTP API port (counter processes). */
  httpPort?: number;
  /** The ops port (/metrics, /readyz). */
  metricsPort: number;
  stop(ms?: number): Promise<number | null>;
  kill9(): Promise<void>;
}

function spawnNode(
  script: string,
  env: Record<string, string>,
  metricsPort: number,
  httpPort?: number,
): Promise<Child> {
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
  const handle: Child = {
    process: child,
    output,
    metricsPort,
    ...(httpPort === undefined ? {} : { httpPort }),
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
  return waitFor(
    async () => {
      if (exitCode !== undefined) return true;
      const res = await fetch(`http://127.0.0.1:${metricsPort}/readyz`, {
        signal: AbortSignal.timeout(1_000),
      });
      return res.ok;
    },
    30_000,
    `${script} readiness`,
  ).then(() => {
    if (exitCode !== undefined) throw new Error(`process exited during start-up:\n${output.join('')}`);
    return handle;
  });
}

/** Everything one test file uses; `close()` removes what it created. */
export interface TestContext {
  runId: string;
  primaryUrl: string;
  topic: string;
  groupId: string;
  registry: Registry;
  pools: MysqlPools;
  router: MysqlRouter;
  shards: RedisShardClient[];
  kafka: Kafka;
  admin: Admin;
  producer: GroupCommitProducer;
  slotMaps: SlotMapSource;
  store: CounterStore;
  app: FastifyInstance;
  /** A counter name unique to this run. */
  name(suffix: string): string;
  /** Authorization header for `userId`, with the `counters:write` scope unless `scopes` says otherwise. */
  auth(userId?: string, scopes?: readonly string[]): Promise<{ authorization: string }>;
  /** Writes `doc` to the slot map file (atomic rename) and makes the source apply it now. */
  publishMap(doc: SlotMapDocument): Promise<void>;
  shard(name: string): RedisShardClient;
  /** The `v` field of a counter's hash on `shardName` (null when absent). */
  redisValue(name: string, shardName: string): Promise<number | null>;
  /** counters.value in MySQL (0 when absent). */
  mysqlValue(name: string): Promise<number>;
  startWriter(extraEnv?: Record<string, string>): Promise<Child>;
  /**
   * The real counter process on this context's database, topics, writer group, JWT secret and
   * slot map file, on free ports (`httpPort`); resolves once `/readyz` answers 200.
   */
  startCounter(extraEnv?: Record<string, string>): Promise<Child>;
  /** Waits until the writer group's stored offsets reach every partition's high watermark. */
  waitDrained(timeoutMs?: number): Promise<void>;
  /** Another app ("pod") on the same clients, optionally with another store. */
  buildApp(store?: CounterStore): Promise<FastifyInstance>;
  close(): Promise<void>;
}

function shardClients(registry: Registry, name: string): RedisShardClient[] {
  return MASTER_NAMES.map(
    (masterName) =>
      new RedisShardClient(
        {
          shard: masterName,
          sentinels: SENTINELS,
          masterName,
          commandTimeoutMs: 500,
          connectTimeoutMs: 1_000,
          connectionName: `hs-test-counter-${name}`,
        },
        { logger, registry },
      ),
  );
}

/** Creates the database, topics, clients, slot map file and app of one test file. */
export async function createTestContext(
  name: string,
  options: { store?: Partial<CounterStoreOptions>; presenceWindowMs?: number } = {},
): Promise<TestContext> {
  const runId = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
  const database = `hs_test_counter_${name.replace(/[^A-Za-z0-9_]/g, '_')}_${runId}`;
  const primaryUrl = withDatabase(BASE_PRIMARY_URL, database);
  const topic = `hs-test.counter-${name}.${runId}`;
  const likesTopic = `hs-test.counter-likes-${name}.${runId}`;
  const uniquesTopic = `hs-test.counter-uniques-${name}.${runId}`;
  const groupId = `hs-test-writer-counter-${name}-${runId}`;
  const secret = randomBytes(32).toString('hex');
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
    connectionLimit: 30,
    connectTimeoutMs: 5_000,
    queryTimeoutMs: 3_000,
    logger,
    registry,
  });
  const router = new MysqlRouter({ pools, logger, registry });

  const kafka = createKafka({
    clientId: `hs-test-counter-${name}`,
    brokers: BROKERS,
    connectionTimeoutMs: 1_000,
    requestTimeoutMs: 5_000,
    logger,
  });
  const topics = [
    topic,
    `${topic}.dlq`,
    likesTopic,
    `${likesTopic}.dlq`,
    uniquesTopic,
    `${uniquesTopic}.dlq`,
  ];
  await ensureTopics(
    kafka,
    topics.map((t) => ({ topic: t, numPartitions: t.endsWith('.dlq') ? 1 : 6 })),
    30_000,
  );
  const admin = kafka.admin();
  await admin.connect();
  const producer = new GroupCommitProducer({ kafka, logger, registry, lingerMs: 2, sendTimeoutMs: 3_000 });
  await producer.connect();

  const shards = shardClients(registry, name);
  await Promise.all(shards.map((s) => s.waitUntilReady(10_000)));
  const dir = await mkdtemp(join(tmpdir(), 'hs-counter-'));
  const mapPath = join(dir, 'slotmap.json');
  await writeFile(mapPath, JSON.stringify(SlotMap.evenSplit(MASTER_NAMES).document));
  const slotMaps = new SlotMapSource({
    path: mapPath,
    fallback: undefined,
    podId: `test-${runId}`,
    shards,
    logger,
    registry,
    pollIntervalMs: 200,
  });
  await slotMaps.start();

  const verifier = new TokenVerifier({ hs256Secret: secret });
  const settings: CounterAppSettings = {
    bodyLimitBytes: 65_536,
    requestTimeoutMs: 15_000,
    rateLimits: { perIp: 0, perUser: 0, windowMs: 60_000, syncMs: 100 },
    presence: { windowMs: options.presenceWindowMs ?? 60_000 },
    uniques: {
      topic: uniquesTopic,
      writerGroupId: groupId,
      retentionDays: 400,
      warmWaitMs: 2_000,
      kafkaTimeoutMs: 3_500,
    },
    store: storeOptions(topic, groupId, options.store),
  };
  const highWatermarks = (t: string) => admin.fetchTopicOffsets(t);
  const store = new CounterStore({
    shards,
    slotMaps,
    router,
    producer,
    highWatermarks,
    logger,
    registry,
    options: settings.store,
  });
  const appDeps = { logger, shards, slotMaps, router, producer, highWatermarks, verifier, settings };
  const app = await buildApp({ ...appDeps, registry, store });
  await app.ready();
  const extraApps: FastifyInstance[] = [];
  const children: Child[] = [];
  const counterPods: string[] = [];
  const prefix = `t${runId}-`;
  const shardByName = new Map(shards.map((s) => [s.shard, s]));

  const ctx: TestContext = {
    runId,
    primaryUrl,
    topic,
    groupId,
    registry,
    pools,
    router,
    shards,
    kafka,
    admin,
    producer,
    slotMaps,
    store,
    app,
    name: (suffix) => `${prefix}${suffix}`,
    async auth(userId = 'svc', scopes = ['counters:write']) {
      return { authorization: `Bearer ${await signDevToken({ secret, userId, scopes })}` };
    },
    async publishMap(doc) {
      const tmp = `${mapPath}.${randomBytes(3).toString('hex')}`;
      await writeFile(tmp, JSON.stringify(doc));
      await rename(tmp, mapPath);
      await slotMaps.check();
      if (slotMaps.current()?.epoch !== doc.epoch) throw new Error(`slot map epoch ${doc.epoch} not applied`);
    },
    shard(shardName) {
      const shard = shardByName.get(shardName);
      if (shard === undefined) throw new Error(`no shard ${shardName}`);
      return shard;
    },
    async redisValue(counter, shardName) {
      const v = await ctx.shard(shardName).redis.hget(counterKeys(counter).value, 'v');
      return v === null ? null : Number(v);
    },
    async mysqlValue(counter) {
      const [row] = await pools.primary.select<{ value: string }>(
        'SELECT value FROM counters WHERE name = ?',
        [counter],
      );
      return row === undefined ? 0 : Number(row.value);
    },
    async startWriter(extraEnv = {}) {
      const metricsPort = await freePort();
      const child = await spawnNode(
        'services/writer/dist/main.js',
        {
          SERVICE_NAME: 'writer-test',
          LOG_LEVEL: process.env['HS_TEST_CHILD_LOG_LEVEL'] ?? 'warn',
          METRICS_PORT: String(metricsPort),
          METRICS_HOST: '127.0.0.1',
          MYSQL_PRIMARY_URL: primaryUrl,
          KAFKA_BROKERS: BROKERS.join(','),
          WRITER_GROUP_ID: groupId,
          WRITER_LIKES_TOPIC: likesTopic,
          WRITER_COUNTERS_TOPIC: topic,
          WRITER_UNIQUES_TOPIC: uniquesTopic,
          SHUTDOWN_DELAY_MS: '0',
          WRITER_SESSION_TIMEOUT_MS: '6000',
          WRITER_HEARTBEAT_INTERVAL_MS: '500',
          ...extraEnv,
        },
        metricsPort,
      );
      children.push(child);
      return child;
    },
    async startCounter(extraEnv = {}) {
      const [httpPort, metricsPort] = [await freePort(), await freePort()];
      const podId = `test-${runId}-counter-${counterPods.length}`;
      counterPods.push(podId);
      const child = await spawnNode(
        'services/counter/dist/main.js',
        {
          SERVICE_NAME: 'counter-test',
          LOG_LEVEL: process.env['HS_TEST_CHILD_LOG_LEVEL'] ?? 'warn',
          HTTP_HOST: '127.0.0.1',
          HTTP_PORT: String(httpPort),
          METRICS_HOST: '127.0.0.1',
          METRICS_PORT: String(metricsPort),
          POD_ID: podId,
          REDIS_SENTINELS: SENTINELS.map((s) => `${s.host}:${s.port}`).join(','),
          REDIS_MASTER_NAMES: MASTER_NAMES.join(','),
          MYSQL_PRIMARY_URL: primaryUrl,
          KAFKA_BROKERS: BROKERS.join(','),
          COUNTER_TOPIC: topic,
          UNIQUES_TOPIC: uniquesTopic,
          WRITER_GROUP_ID: groupId,
          JWT_HS256_SECRET: secret,
          SLOTMAP_PATH: mapPath,
          SLOTMAP_POLL_MS: '200',
          RATE_LIMIT_PER_USER: '0',
          RATE_LIMIT_PER_IP: '0',
          SHUTDOWN_DELAY_MS: '0',
          ...extraEnv,
        },
        metricsPort,
        httpPort,
      );
      children.push(child);
      return child;
    },
    async waitDrained(timeoutMs = 60_000) {
      await waitFor(
        async () => {
          for (const t of [topic, uniquesTopic]) {
            const offsets = await admin.fetchTopicOffsets(t);
            const rows = await pools.primary.select<{ partition: number; next_offset: string }>(
              'SELECT `partition`, next_offset FROM consumer_offsets WHERE group_id = ? AND topic = ?',
              [groupId, t],
            );
            const position = new Map(rows.map((r) => [Number(r.partition), BigInt(r.next_offset)]));
            const done = offsets.every(
              (o) => BigInt(o.high) === 0n || (position.get(o.partition) ?? -1n) >= BigInt(o.high),
            );
            if (!done) return false;
          }
          return true;
        },
        timeoutMs,
        'the writer to drain the topic',
      );
    },
    async buildApp(otherStore) {
      const more = await buildApp({
        ...appDeps,
        registry: new Registry(),
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
      await slotMaps.close();
      await producer.close();
      await admin.disconnect().catch(() => undefined);
      for (const shard of shards) {
        // A killed counter process never removed its slot map acknowledgement.
        await cleanShard(shard, [`ctr:{*}:${prefix}*`, `[pu][rq]:{*}:${prefix}*`], {
          hashFields: { key: ACKS_KEY, fields: counterPods },
        });
      }
      await Promise.all(shards.map((s) => s.close()));
      await dropDatabase(pools.primary, database);
      await pools.close();
      await rm(dir, { recursive: true, force: true });
      await deleteTopics(kafka, topics, 30_000).catch(() => undefined);
    },
  };
  return ctx;
}

/** The shard that owns `name` under the context's current slot map. */
export function ownerOf(ctx: TestContext, name: string): string {
  const map = ctx.slotMaps.current();
  if (map === undefined) throw new Error('no slot map');
  return map.route(slotOf(name)).shard;
}
