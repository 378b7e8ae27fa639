import {
  ConfigError,
  kafkaEnv,
  loadConfig,
  mysqlEnv,
  processEnv,
  TOPICS,
  type ConfigIssue,
} from '@hyperscale/platform';
import { z } from 'zod';

const count = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const ms = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

/** Writer-specific variables (see README.md for the table). */
export const writerEnv = {
  /** Kafka consumer group, and the `group_id` of the offsets stored in MySQL. */
  WRITER_GROUP_ID: z
    .string()
    .trim()
    .regex(/^[A-Za-z0-9._-]{1,255}$/, 'expected 1-255 characters of [A-Za-z0-9._-]')
    .default('hyperscale-writer'),
  WRITER_LIKES_TOPIC: z
    .string()
    .trim()
    .regex(/^[A-Za-z0-9._-]{1,249}$/, 'expected a Kafka topic name')
    .default(TOPICS.likes),
  /** Counter deltas topic; `none` disables the counters handler. */
  WRITER_COUNTERS_TOPIC: z
    .string()
    .trim()
    .regex(/^[A-Za-z0-9._-]{1,249}$/, 'expected a Kafka topic name')
    .default(TOPICS.counters),
  /** Unique-user events topic; `none` disables the uniques handler. */
  WRITER_UNIQUES_TOPIC: z
    .string()
    .trim()
    .regex(/^[A-Za-z0-9._-]{1,249}$/, 'expected a Kafka topic name')
    .default(TOPICS.uniques),
  WRITER_BATCH_MAX_MESSAGES: count(1, 5_000).default(1_000),
  /**
   * A fetch is answered once WRITER_FETCH_MIN_BYTES are ready or after WRITER_BATCH_MAX_WAIT_MS:
   * under load, batches (and so transactions) grow instead of the writer and the broker spinning
   * on fetches of a few messages; when traffic is light the writer lags by at most the wait. Each
   * transaction costs the writer and MariaDB about the same whatever its size, so a longer wait
   * saves their CPU, but a cold counter's or post's first read waits behind the writer: 250 ms
   * halved that CPU under load and doubled the p99 of cold-heavy increments (bench/RESULTS.md,
   * 2026-12-06 path floor), so the default stays at 50 ms. Shared transactions
   * (WRITER_TRANSACTION_MAX_BATCHES) since give that saving without the wait.
   */
  WRITER_BATCH_MAX_WAIT_MS: ms(1, 10_000).default(50),
  WRITER_FETCH_MIN_BYTES: count(1, 16_777_216).default(65_536),
  WRITER_PARTITION_CONCURRENCY: count(1, 64).default(8),
  /**
   * Partition batches handed over together (the partitions of one fetch) share one transaction, up
   * to this many; 1 = one transaction per partition batch. See README "Shared transactions".
   */
  WRITER_TRANSACTION_MAX_BATCHES: count(1, 256).default(16),
  /** Events a transaction of several partition batches may carry (a single batch may hold more). */
  WRITER_TRANSACTION_MAX_EVENTS: count(1, 100_000).default(1_000),
  WRITER_RETRY_MAX_ATTEMPTS: count(1, 20).default(3),
  WRITER_RETRY_INITIAL_DELAY_MS: ms(0, 60_000).default(100),
  WRITER_RETRY_MAX_DELAY_MS: ms(0, 600_000).default(2_000),
  WRITER_TRANSIENT_PAUSE_MS: ms(10, 600_000).default(1_000),
  WRITER_TRANSACTION_ATTEMPTS: count(1, 20).default(3),
  WRITER_SESSION_TIMEOUT_MS: ms(1_000, 300_000).default(30_000),
  WRITER_HEARTBEAT_INTERVAL_MS: ms(100, 60_000).default(3_000),
  WRITER_START_TIMEOUT_MS: ms(1_000, 600_000).default(30_000),
  WRITER_STOP_TIMEOUT_MS: ms(100, 600_000).default(10_000),
  /** Pause between retention passes over fallback_events and presence; 0 disables the loop. */
  RETENTION_INTERVAL_MS: ms(0, 86_400_000).default(60_000),
  /** Age past which fallback_events rows go: must exceed how late a delta can still be consumed. */
  FALLBACK_EVENTS_RETENTION_MS: ms(60_000, 31_536_000_000).default(604_800_000),
  /** Age past which presence fallback rows go: must exceed the counter's PRESENCE_WINDOW_MS. */
  PRESENCE_RETENTION_MS: ms(60_000, 31_536_000_000).default(3_600_000),
};

const shape = { ...processEnv, ...mysqlEnv, ...kafkaEnv, ...writerEnv };

/** The writer's validated configuration. */
export type WriterConfig = z.infer<z.ZodObject<typeof shape>>;

/**
 * Reads and validates the writer's environment: processEnv + mysqlEnv + kafkaEnv + writerEnv.
 * Also rejects combinations that cannot work: a heartbeat not shorter than the session, a retry
 * delay range upside down, fewer MySQL connections than partitions applied in parallel (+1 for
 * readiness and offset reads), a consumer stop bound that does not fit the shutdown bound.
 * @throws ConfigError naming every offending variable.
 */
export function loadWriterConfig(
  env: Readonly<Record<string, string | undefined>> = process.env,
): WriterConfig {
  const config = loadConfig(shape, env);
  const issues: ConfigIssue[] = [];
  if (config.WRITER_HEARTBEAT_INTERVAL_MS >= config.WRITER_SESSION_TIMEOUT_MS) {
    issues.push({
      variable: 'WRITER_HEARTBEAT_INTERVAL_MS',
      message: 'must be below WRITER_SESSION_TIMEOUT_MS',
    });
  }
  if (config.WRITER_RETRY_MAX_DELAY_MS < config.WRITER_RETRY_INITIAL_DELAY_MS) {
    issues.push({
      variable: 'WRITER_RETRY_MAX_DELAY_MS',
      message: 'must be at least WRITER_RETRY_INITIAL_DELAY_MS',
    });
  }
  if (config.MYSQL_CONNECTION_LIMIT < config.WRITER_PARTITION_CONCURRENCY + 1) {
    issues.push({
      variable: 'MYSQL_CONNECTION_LIMIT',
      message: `must be at least WRITER_PARTITION_CONCURRENCY + 1 (${config.WRITER_PARTITION_CONCURRENCY + 1})`,
    });
  }
  if (config.WRITER_STOP_TIMEOUT_MS + config.SHUTDOWN_DELAY_MS >= config.SHUTDOWN_TIMEOUT_MS) {
    issues.push({
      variable: 'WRITER_STOP_TIMEOUT_MS',
      message:
        'WRITER_STOP_TIMEOUT_MS + SHUTDOWN_DELAY_MS must be below SHUTDOWN_TIMEOUT_MS (pools close after the consumer)',
    });
  }
  if (issues.length > 0) throw new ConfigError(issues);
  return config;
}
