import { Counter, Histogram, type Registry } from 'prom-client';

/** Which path made a write durable. */
export type WritePath = 'redis' | 'mysql_fallback' | 'mysql_direct';

/** Why a request left the Redis + Kafka path. */
export type FallbackReason =
  | 'kafka_unavailable'
  | 'kafka_backpressure'
  | 'kafka_breaker_open'
  | 'redis_unavailable'
  | 'warm_unavailable';

/** Outcome of one warm attempt. */
export type WarmOutcome = 'warmed' | 'degraded' | 'already' | 'aborted' | 'unavailable' | 'failed';

/** Why a post's keys were deleted (made cold). */
export type InvalidationReason = 'master_switch' | 'admin' | 'fallback' | 'generation' | 'repair';

/** The like service's own metrics (HTTP, Redis, MySQL, Kafka and breaker metrics come from the platform). */
export interface LikeMetrics {
  writes: Counter<'action' | 'path' | 'changed'>;
  warms: Counter<'outcome'>;
  warmDuration: Histogram;
  warmWaitTimeouts: Counter;
  fallbacks: Counter<'reason'>;
  reads: Counter<'source'>;
  invalidations: Counter<'reason'>;
}

/** Registers the like metrics on `registry` (call once per registry). */
export function likeMetrics(registry: Registry): LikeMetrics {
  const registers = [registry];
  return {
    writes: new Counter({
      name: 'hyperscale_like_writes_total',
      help: 'Acknowledged like/unlike writes by the path that made them durable and whether they changed state.',
      labelNames: ['action', 'path', 'changed'],
      registers,
    }),
    warms: new Counter({
      name: 'hyperscale_like_warm_total',
      help: 'Attempts to warm a cold post from MySQL, by outcome.',
      labelNames: ['outcome'],
      registers,
    }),
    warmDuration: new Histogram({
      name: 'hyperscale_like_warm_duration_seconds',
      help: 'Time to warm a cold post: writer barrier, MySQL snapshot and Redis fill.',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5],
      registers,
    }),
    warmWaitTimeouts: new Counter({
      name: 'hyperscale_like_warm_wait_timeouts_total',
      help: 'Warms that stopped waiting for the writer and warmed anyway with a short TTL.',
      registers,
    }),
    fallbacks: new Counter({
      name: 'hyperscale_like_fallbacks_total',
      help: 'Requests that left the Redis + Kafka path, by reason.',
      labelNames: ['reason'],
      registers,
    }),
    reads: new Counter({
      name: 'hyperscale_like_reads_total',
      help: 'Post states read, by source (redis or mysql).',
      labelNames: ['source'],
      registers,
    }),
    invalidations: new Counter({
      name: 'hyperscale_like_invalidations_total',
      help: 'Posts (or, for master_switch, keys) made cold, by reason.',
      labelNames: ['reason'],
      registers,
    }),
  };
}
