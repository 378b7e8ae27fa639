import type { CounterAppSettings } from './app.js';
import type { CounterConfig } from './config.js';

/** App settings from the validated environment. */
export function appSettings(config: CounterConfig): CounterAppSettings {
  return {
    bodyLimitBytes: config.HTTP_BODY_LIMIT_BYTES,
    requestTimeoutMs: config.HTTP_REQUEST_TIMEOUT_MS,
    rateLimits: {
      perIp: config.RATE_LIMIT_PER_IP,
      perUser: config.RATE_LIMIT_PER_USER,
      windowMs: config.RATE_LIMIT_WINDOW_MS,
      syncMs: config.RATE_LIMIT_SYNC_MS,
    },
    presence: { windowMs: config.PRESENCE_WINDOW_MS },
    uniques: {
      topic: config.UNIQUES_TOPIC,
      writerGroupId: config.WRITER_GROUP_ID,
      retentionDays: config.UNIQUES_RETENTION_DAYS,
      warmWaitMs: config.COUNTER_WARM_WAIT_MS,
      kafkaTimeoutMs: config.KAFKA_SEND_TIMEOUT_MS + 500,
    },
    store: {
      topic: config.COUNTER_TOPIC,
      writerGroupId: config.WRITER_GROUP_ID,
      warmWaitMs: config.COUNTER_WARM_WAIT_MS,
      cacheTtlMs: config.COUNTER_CACHE_TTL_MS,
      degradedTtlMs: config.COUNTER_DEGRADED_TTL_MS,
      readCache: {
        maxEntries: config.COUNTER_READ_CACHE_ENTRIES,
        maxStalenessMs: config.COUNTER_READ_CACHE_STALENESS_MS,
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
