/**
 * The writer process: Kafka → MySQL write-behind (DESIGN.md §2 "Writer"). Configuration from the
 * environment (see README.md), ops server with /metrics, /livez, /readyz, graceful shutdown on
 * SIGTERM/SIGINT: readiness fails, the retention loop stops, the batch in progress finishes, the
 * group is left, pools close.
 */
import {
  buildOpsServer,
  createKafka,
  createLogger,
  createMysqlPools,
  createRegistry,
  GracefulShutdown,
  Health,
  migrate,
  runMain,
} from '@hyperscale/platform';
import { loadWriterConfig } from './config.js';
import { countersHandler } from './handlers/counters.js';
import { likesHandler } from './handlers/likes.js';
import { uniquesHandler } from './handlers/uniques.js';
import { runPipeline, type PipelineHandle, type TopicHandler } from './pipeline.js';
import { RetentionLoop, retentionTables } from './retention.js';

runMain('writer', async () => {
  const config = loadWriterConfig();
  const logger = createLogger({ service: config.SERVICE_NAME, level: config.LOG_LEVEL });
  const registry = createRegistry({ service: config.SERVICE_NAME });
  const health = new Health();
  let pipeline: PipelineHandle | null = null;

  // Listening first: /livez answers during start-up, /readyz says what is still missing.
  const ops = buildOpsServer({ registry, health, logger });
  await ops.listen({ host: config.METRICS_HOST, port: config.METRICS_PORT });

  if (config.MYSQL_MIGRATE_ON_START) await migrate({ url: config.MYSQL_PRIMARY_URL, logger });
  const pools = createMysqlPools({
    primaryUrl: config.MYSQL_PRIMARY_URL, // the writer never reads the replica
    connectionLimit: config.MYSQL_CONNECTION_LIMIT,
    connectTimeoutMs: config.MYSQL_CONNECT_TIMEOUT_MS,
    queryTimeoutMs: config.MYSQL_QUERY_TIMEOUT_MS,
    killTimedOutSessions: config.MYSQL_KILL_TIMED_OUT_SESSIONS,
    logger,
    registry,
  });
  const kafka = createKafka({
    clientId: config.KAFKA_CLIENT_ID ?? config.SERVICE_NAME,
    brokers: config.KAFKA_BROKERS.map((b) => `${b.host}:${b.port}`),
    connectionTimeoutMs: config.KAFKA_CONNECTION_TIMEOUT_MS,
    requestTimeoutMs: config.KAFKA_REQUEST_TIMEOUT_MS,
    logger,
  });

  health.addReadinessCheck('kafka-consumer', () => pipeline?.isRunning() ?? false);
  health.addReadinessCheck('mysql-primary', () =>
    pools.primary.select('SELECT 1 AS ok', [], { timeoutMs: 800 }),
  );

  // Every replica runs it: concurrent passes only delete old rows (see retention.ts).
  const retention =
    config.RETENTION_INTERVAL_MS === 0
      ? undefined
      : new RetentionLoop({
          pool: pools.primary,
          tables: retentionTables({
            fallbackEventsMs: config.FALLBACK_EVENTS_RETENTION_MS,
            presenceMs: config.PRESENCE_RETENTION_MS,
          }),
          intervalMs: config.RETENTION_INTERVAL_MS,
          logger,
          registry,
        });

  const shutdown = new GracefulShutdown({
    logger,
    health,
    delayMs: config.SHUTDOWN_DELAY_MS,
    timeoutMs: config.SHUTDOWN_TIMEOUT_MS,
  })
    .add('retention', async () => retention?.stop())
    .add('pipeline', async () => pipeline?.stop())
    .add('mysql', () => pools.close())
    .add('ops', () => ops.close());
  shutdown.install();

  const handlers: TopicHandler<unknown>[] = [likesHandler({ topic: config.WRITER_LIKES_TOPIC })];
  const topics = [config.WRITER_LIKES_TOPIC];
  if (config.WRITER_COUNTERS_TOPIC !== 'none') {
    handlers.push(countersHandler({ topic: config.WRITER_COUNTERS_TOPIC }));
    topics.push(config.WRITER_COUNTERS_TOPIC);
  }
  if (config.WRITER_UNIQUES_TOPIC !== 'none') {
    handlers.push(uniquesHandler({ topic: config.WRITER_UNIQUES_TOPIC }));
    topics.push(config.WRITER_UNIQUES_TOPIC);
  }
  pipeline = await runPipeline({
    kafka,
    pool: pools.primary,
    groupId: config.WRITER_GROUP_ID,
    handlers,
    logger,
    registry,
    batch: {
      maxMessages: config.WRITER_BATCH_MAX_MESSAGES,
      maxWaitMs: config.WRITER_BATCH_MAX_WAIT_MS,
      minBytes: config.WRITER_FETCH_MIN_BYTES,
      partitionsConcurrently: config.WRITER_PARTITION_CONCURRENCY,
      maxBatchesPerTransaction: config.WRITER_TRANSACTION_MAX_BATCHES,
      maxEventsPerTransaction: config.WRITER_TRANSACTION_MAX_EVENTS,
    },
    retry: {
      maxAttempts: config.WRITER_RETRY_MAX_ATTEMPTS,
      initialDelayMs: config.WRITER_RETRY_INITIAL_DELAY_MS,
      maxDelayMs: config.WRITER_RETRY_MAX_DELAY_MS,
    },
    transientPauseMs: config.WRITER_TRANSIENT_PAUSE_MS,
    transactionAttempts: config.WRITER_TRANSACTION_ATTEMPTS,
    sessionTimeoutMs: config.WRITER_SESSION_TIMEOUT_MS,
    heartbeatIntervalMs: config.WRITER_HEARTBEAT_INTERVAL_MS,
    startTimeoutMs: config.WRITER_START_TIMEOUT_MS,
    stopTimeoutMs: config.WRITER_STOP_TIMEOUT_MS,
  });
  retention?.start();
  logger.info(
    {
      groupId: config.WRITER_GROUP_ID,
      topics,
      metricsPort: config.METRICS_PORT,
    },
    'writer running',
  );
});
