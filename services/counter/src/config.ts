import { z } from 'zod';
import {
  ConfigError,
  TOPICS,
  httpEnv,
  kafkaEnv,
  loadConfig,
  millis,
  mysqlEnv,
  processEnv,
  redisEnv,
  urlWith,
} from '@hyperscale/platform';

const count = (fallback: number) => z.coerce.number().int().min(0).default(fallback);
const positive = (fallback: number) => z.coerce.number().int().min(1).default(fallback);

/** Every environment variable the counter service reads (see the README's configuration table). */
export const counterEnv = {
  ...processEnv,
  ...httpEnv,
  ...redisEnv,
  ...mysqlEnv,
  ...kafkaEnv,
  JWT_HS256_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  JWT_JWKS_URL: urlWith(['http:', 'https:']).optional(),
  JWT_ISSUER: z.string().trim().min(1).optional(),
  JWT_AUDIENCE: z.string().trim().min(1).optional(),
  COUNTER_TOPIC: z
    .string()
    .trim()
    .regex(/^[A-Za-z0-9._-]{1,249}$/)
    .default(TOPICS.counters),
  WRITER_GROUP_ID: z.string().trim().min(1).default('hyperscale-writer'),
  /** Slot map JSON file (a mounted ConfigMap); unset = even split over REDIS_MASTER_NAMES. */
  SLOTMAP_PATH: z.string().trim().min(1).optional(),
  /** `namespace/name` of the operator's slot map ConfigMap, read through the Kubernetes API. */
  SLOTMAP_CONFIGMAP: z
    .string()
    .trim()
    .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?\/[a-z0-9]([-.a-z0-9]*[a-z0-9])?$/, 'expected namespace/name')
    .optional(),
  /** kubeconfig for SLOTMAP_CONFIGMAP; unset = the pod's service account. */
  KUBECONFIG: z.string().trim().min(1).optional(),
  SLOTMAP_TIMEOUT_MS: millis.default(2_000),
  SLOTMAP_POLL_MS: millis.default(1_000),
  SLOTMAP_ACK_INTERVAL_MS: millis.default(2_000),
  /** Pod identity in the slot map acknowledgements; default HOSTNAME, else a random UUID. */
  POD_ID: z.string().trim().min(1).optional(),
  HOSTNAME: z.string().trim().min(1).optional(),
  RATE_LIMIT_PER_USER: count(6_000),
  RATE_LIMIT_PER_IP: count(60_000),
  RATE_LIMIT_WINDOW_MS: millis.default(60_000),
  /** How often each pod adds its rate-limit counts to Redis and reads the totals of all pods. */
  RATE_LIMIT_SYNC_MS: millis.default(100),
  /** Presence window: a user is online while their last heartbeat is younger than this. */
  UNIQUES_TOPIC: z
    .string()
    .trim()
    .regex(/^[A-Za-z0-9._-]{1,249}$/)
    .default(TOPICS.uniques),
  /** Days the per-day sets and HyperLogLogs stay in Redis (unique_daily keeps them for ever). */
  UNIQUES_RETENTION_DAYS: z.coerce.number().int().min(1).max(3_660).default(400),
  PRESENCE_WINDOW_MS: millis.default(60_000),
  COUNTER_WARM_WAIT_MS: millis.default(2_000),
  COUNTER_CACHE_TTL_MS: millis.default(86_400_000),
  COUNTER_DEGRADED_TTL_MS: millis.default(30_000),
  /** Counter values kept per shard in the pod, invalidated by Redis (CLIENT TRACKING); 0 = off. */
  COUNTER_READ_CACHE_ENTRIES: count(100_000),
  /** The most a cached value may trail a write when Redis' invalidations stop arriving. */
  COUNTER_READ_CACHE_STALENESS_MS: z.coerce.number().int().min(100).max(60_000).default(2_000),
  REDIS_BREAKER_FAILURES: positive(5),
  REDIS_BREAKER_HALF_OPEN_MS: millis.default(1_000),
  KAFKA_BREAKER_FAILURES: positive(3),
  KAFKA_BREAKER_HALF_OPEN_MS: millis.default(2_000),
};

/** The validated configuration of the counter service. */
export type CounterConfig = z.infer<z.ZodObject<typeof counterEnv>>;

/**
 * Reads and validates the environment. Beyond the per-variable rules: at least one of
 * JWT_HS256_SECRET / JWT_JWKS_URL, and Sentinels with master names or direct servers.
 * @throws ConfigError naming every offending variable.
 */
export function loadCounterConfig(
  env: Readonly<Record<string, string | undefined>> = process.env,
): CounterConfig {
  const config = loadConfig(counterEnv, env);
  const issues = [];
  if (config.JWT_HS256_SECRET === undefined && config.JWT_JWKS_URL === undefined) {
    issues.push({ variable: 'JWT_HS256_SECRET', message: 'set JWT_HS256_SECRET or JWT_JWKS_URL' });
  }
  if (config.SLOTMAP_PATH !== undefined && config.SLOTMAP_CONFIGMAP !== undefined) {
    issues.push({
      variable: 'SLOTMAP_CONFIGMAP',
      message: 'set SLOTMAP_PATH or SLOTMAP_CONFIGMAP, not both',
    });
  }
  if (config.REDIS_SENTINELS !== undefined && (config.REDIS_MASTER_NAMES?.length ?? 0) === 0) {
    issues.push({ variable: 'REDIS_MASTER_NAMES', message: 'is required with REDIS_SENTINELS' });
  }
  if (config.REDIS_SENTINELS === undefined && config.REDIS_DIRECT === undefined) {
    issues.push({
      variable: 'REDIS_SENTINELS',
      message: 'set REDIS_SENTINELS (+ REDIS_MASTER_NAMES) or REDIS_DIRECT',
    });
  }
  if (issues.length > 0) throw new ConfigError(issues);
  return config;
}
