import { randomUUID } from 'node:crypto';
import {
  GracefulShutdown,
  GroupCommitProducer,
  Health,
  RedisShardClient,
  TokenVerifier,
  buildOpsServer,
  createKafka,
  createLogger,
  createRedisClient,
  createRegistry,
  redisShardOptionsFromEnv,
  runMain,
  startMysqlFromEnv,
  withTimeout,
} from '@hyperscale/platform';
import { buildApp } from './app.js';
import { loadCounterConfig } from './config.js';
import { mysqlPing } from './mysql-counters.js';
import { appSettings } from './settings.js';
import { SlotMap } from './slot-map.js';
import { configMapLoader } from './slot-map-configmap.js';
import { SlotMapSource } from './slot-map-source.js';

async function start(): Promise<void> {
  const config = loadCounterConfig();
  const logger = createLogger({ service: config.SERVICE_NAME, level: config.LOG_LEVEL });
  const registry = createRegistry({ service: config.SERVICE_NAME });
  const health = new Health();
  const shutdown = new GracefulShutdown({
    logger,
    health,
    delayMs: config.SHUTDOWN_DELAY_MS,
    timeoutMs: config.SHUTDOWN_TIMEOUT_MS,
  });
  const verifier = new TokenVerifier({
    hs256Secret: config.JWT_HS256_SECRET,
    jwksUrl: config.JWT_JWKS_URL,
    issuer: config.JWT_ISSUER,
    audience: config.JWT_AUDIENCE,
  });

  const { pools, monitor, router } = await startMysqlFromEnv(config, { logger, registry });

  const options = redisShardOptionsFromEnv(config);
  const shards = options.map((o) => new RedisShardClient(o, { logger, registry }));
  const first = options[0];
  const rateLimitRedis =
    first === undefined
      ? undefined
      : createRedisClient({
          ...first,
          commandTimeoutMs: Math.min(150, config.REDIS_COMMAND_TIMEOUT_MS),
          connectionName: `hyperscale:${config.SERVICE_NAME}:rate-limit`,
          logger: logger.child({ component: 'rate-limit-redis' }),
        });
  await Promise.all(
    shards.map((shard) =>
      shard.waitUntilReady(config.REDIS_CONNECT_TIMEOUT_MS * 2).catch((err: unknown) => {
        logger.warn(
          { err, shard: shard.shard },
          'redis shard not ready at start-up; serving from MySQL until it is',
        );
      }),
    ),
  );

  const slotMapSource =
    config.SLOTMAP_CONFIGMAP === undefined
      ? config.SLOTMAP_PATH
      : configMapLoader({
          configMap: config.SLOTMAP_CONFIGMAP,
          kubeconfig: config.KUBECONFIG,
          timeoutMs: config.SLOTMAP_TIMEOUT_MS,
        });
  const slotMaps = new SlotMapSource({
    path: slotMapSource,
    fallback: slotMapSource === undefined ? SlotMap.evenSplit(shards.map((s) => s.shard)) : undefined,
    podId: config.POD_ID ?? config.HOSTNAME ?? randomUUID(),
    pollIntervalMs: config.SLOTMAP_POLL_MS,
    ackIntervalMs: config.SLOTMAP_ACK_INTERVAL_MS,
    shards,
    logger,
    registry,
  });
  await slotMaps.start();

  const kafka = createKafka({
    clientId: config.KAFKA_CLIENT_ID ?? config.SERVICE_NAME,
    brokers: config.KAFKA_BROKERS.map(({ host, port }) => `${host}:${port}`),
    connectionTimeoutMs: config.KAFKA_CONNECTION_TIMEOUT_MS,
    requestTimeoutMs: config.KAFKA_REQUEST_TIMEOUT_MS,
    logger,
  });
  const producer = new GroupCommitProducer({
    kafka,
    logger,
    registry,
    lingerMs: config.KAFKA_LINGER_MS,
    maxBatch: config.KAFKA_MAX_BATCH,
    sendTimeoutMs: config.KAFKA_SEND_TIMEOUT_MS,
  });
  const admin = kafka.admin({ retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 500 } });
  let producerConnected = false;
  await Promise.all([
    producer.connect().then(
      () => (producerConnected = true),
      (err: unknown) =>
        logger.warn({ err }, 'kafka producer not connected at start-up; the MySQL fallback serves'),
    ),
    withTimeout(admin.connect(), config.KAFKA_CONNECTION_TIMEOUT_MS * 2, 'kafka admin connect').catch(
      (err: unknown) => logger.warn({ err }, 'kafka admin not connected at start-up'),
    ),
  ]);

  const app = await buildApp({
    settings: appSettings(config),
    logger,
    registry,
    shards,
    slotMaps,
    router,
    producer,
    highWatermarks: (topic) => admin.fetchTopicOffsets(topic),
    verifier,
    ...(rateLimitRedis === undefined ? {} : { rateLimitRedis }),
  });
  const ops = buildOpsServer({ registry, health, logger });

  health.addReadinessCheck('slotmap', () => {
    if (!app.counterStore.ready()) throw new Error('no slot map loaded');
    return true;
  });
  health.addReadinessCheck('mysql:primary', () => mysqlPing(pools.primary));
  health.addReadinessCheck('kafka:producer', async () => {
    if (producer.stats().closed) return false;
    if (!producerConnected) {
      await producer.connect();
      producerConnected = true;
    }
    return true;
  });

  shutdown
    .add('http', () => app.close())
    .add('kafka producer', () => producer.close())
    .add('kafka admin', () => admin.disconnect())
    .add('slot map', () => slotMaps.close())
    .add('redis', () =>
      Promise.all([...shards.map((shard) => shard.close()), rateLimitRedis?.quit().catch(() => undefined)]),
    )
    .add('replica monitor', async () => monitor?.stop())
    .add('mysql', () => pools.close())
    .add('ops', () => ops.close());
  shutdown.install();

  await ops.listen({ host: config.METRICS_HOST, port: config.METRICS_PORT });
  await app.listen({ host: config.HTTP_HOST, port: config.HTTP_PORT });
  logger.info(
    {
      port: config.HTTP_PORT,
      metricsPort: config.METRICS_PORT,
      shards: shards.length,
      podId: slotMaps.podId,
    },
    'counter service ready',
  );
}

runMain('counter', start);
