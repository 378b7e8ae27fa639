import { z } from 'zod';
import {
  ConfigError,
  TOPICS,
  flag,
  httpEnv,
  kafkaEnv,
  loadConfig,
  millis,
  mysqlEnv,
  processEnv,
  redisEnv,
  stringList,
  urlWith,
} from '@hyperscale/platform';

const count = (fallback: number) => z.coerce.number().int().min(0).default(fallback);
const positive = (fallback: number) => z.coerce.number().int().min(1).default(fallback);

/** Every environment variable the like service reads (see the README's configuration table). */
export const likeEnv = {
  ...processEnv,
  ...httpEnv,
  ...redisEnv,
  ...mysqlEnv,
  ...kafkaEnv,
  JWT_HS256_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  JWT_JWKS_URL: urlWith(['http:', 'https:']).optional(),
  JWT_ISSUER: z.string().trim().min(1).optional(),
  JWT_AUDIENCE: z.string().trim().min(1).optional(),
  ADMIN_TOKEN: z.string().min(16, 'must be at least 16 characters'),
  LIKE_DEV_MODE: flag.default(false),
  LIKE_TOPIC: z
    .string()
    .trim()
    .regex(/^[A-Za-z0-9._-]{1,249}$/)
    .default(TOPICS.likes),
  WRITER_GROUP_ID: z.string().trim().min(1).default('hyperscale-writer'),
  /** Requests per user per window; 0 disables. */
  RATE_LIMIT_PER_USER: count(600),
  /** Requests per client IP per window; 0 disables. */
  RATE_LIMIT_PER_IP: count(6_000),
  RATE_LIMIT_WINDOW_MS: millis.default(60_000),
  /** How often each pod adds its rate-limit counts to Redis and reads the totals of all pods. */
  RATE_LIMIT_SYNC_MS: millis.default(100),
  CORS_ORIGINS: stringList.optional(),
  LIKE_WARM_WAIT_MS: millis.default(2_000),
  LIKE_DIRECT_WRITE_WAIT_MS: count(1_000),
  LIKE_CACHE_TTL_MS: millis.default(86_400_000),
  LIKE_DEGRADED_TTL_MS: millis.default(30_000),
  /** How long a post's newest acknowledged Kafka position stays in Redis for fallback writes. */
  LIKE_ACKED_POSITION_TTL_MS: millis.default(86_400_000),
  /** Post states kept per shard in the pod, invalidated by Redis (CLIENT TRACKING); 0 = off. */
  LIKE_READ_CACHE_ENTRIES: count(100_000),
  /** The most a cached state may trail a write when Redis' invalidations stop arriving. */
  LIKE_READ_CACHE_STALENESS_MS: z.coerce.number().int().min(100).max(60_000).default(2_000),
  REDIS_BREAKER_FAILURES: positive(5),
  REDIS_BREAKER_HALF_OPEN_MS: millis.default(1_000),
  KAFKA_BREAKER_FAILURES: positive(3),
  KAFKA_BREAKER_HALF_OPEN_MS: millis.default(2_000),
};

/** The validated configuration of the like service. */
export type LikeConfig = z.infer<z.ZodObject<typeof likeEnv>>;

/**
 * Reads and validates the environment. Beyond the per-variable rules: at least one of
 * JWT_HS256_SECRET / JWT_JWKS_URL, and either Sentinels with master names or direct servers.
 * @throws ConfigError naming every offending variable.
 */
export function loadLikeConfig(env: Readonly<Record<string, string | undefined>> = process.env): LikeConfig {
  const config = loadConfig(likeEnv, env);
  const issues = [];
  if (config.JWT_HS256_SECRET === undefined && config.JWT_JWKS_URL === undefined) {
    issues.push({ variable: 'JWT_HS256_SECRET', message: 'set JWT_HS256_SECRET or JWT_JWKS_URL' });
  }
  const sentinel = config.REDIS_SENTINELS !== undefined;
  if (sentinel && (config.REDIS_MASTER_NAMES?.length ?? 0) === 0) {
    issues.push({ variable: 'REDIS_MASTER_NAMES', message: 'is required with REDIS_SENTINELS' });
  }
  if (!sentinel && config.REDIS_DIRECT === undefined) {
    issues.push({
      variable: 'REDIS_SENTINELS',
      message: 'set REDIS_SENTINELS (+ REDIS_MASTER_NAMES) or REDIS_DIRECT',
    });
  }
  if (issues.length > 0) throw new ConfigError(issues);
  return config;
}
