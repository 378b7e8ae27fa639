import type { LikeAppSettings } from './app.js';
import type { LikeConfig } from './config.js';

/** App settings from the validated environment. */
export function appSettings(config: LikeConfig): LikeAppSettings {
  return {
    bodyLimitBytes: config.HTTP_BODY_LIMIT_BYTES,
    requestTimeoutMs: config.HTTP_REQUEST_TIMEOUT_MS,
    adminToken: config.ADMIN_TOKEN,
    devMode: config.LIKE_DEV_MODE,
    rateLimits: {
      perIp: config.RATE_LIMIT_PER_IP,
      perUser: config.RATE_LIMIT_PER_USER,
      windowMs: config.RATE_LIMIT_WINDOW_MS,
      syncMs: config.RATE_LIMIT_SYNC_MS,
    },
    corsOrigins: config.CORS_ORIGINS ?? [],
    store: {
      topic: config.LIKE_TOPIC,
      writerGroupId: config.WRITER_GROUP_ID,
      warmWaitMs: config.LIKE_WARM_WAIT_MS,
      directWriteWaitMs: config.LIKE_DIRECT_WRITE_WAIT_MS,
      cacheTtlMs: config.LIKE_CACHE_TTL_MS,
      degradedTtlMs: config.LIKE_DEGRADED_TTL_MS,
      ackedPositionTtlMs: config.LIKE_ACKED_POSITION_TTL_MS,
      readCache: {
        maxEntries: config.LIKE_READ_CACHE_ENTRIES,
        maxStalenessMs: config.LIKE_READ_CACHE_STALENESS_MS,
      },
      redisBreaker: {
        consecutiveFailures: config.REDIS_BREAKER_FAILURES,
        halfOpenAfterMs: config.REDIS_BREAKER_HALF_OPEN_MS,
      },
      kafkaTimeoutMs: config.KAFKA_SEND_TIMEOUT_MS + 500,
      kafkaBreaker: {
        consecutiveFailures: config.KAFKA_BREAKER_FAILURES,
        halfOpenAfterMs: config.KAFKA_BREAKER_HALF_OPEN_MS,
      },
    },
  };
}
