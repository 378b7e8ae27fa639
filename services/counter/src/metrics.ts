import { Counter, Histogram, type Registry } from 'prom-client';

/** Which path made a counter write durable. */
export type WritePath = 'redis' | 'mysql_fallback' | 'mysql_direct';

/** Why a write left the Redis + Kafka path. */
export type FallbackReason =
  | 'kafka_unavailable'
  | 'kafka_backpressure'
  | 'kafka_breaker_open'
  | 'redis_unavailable'
  | 'warm_unavailable';

/** Outcome of one warm. */
export type WarmOutcome = 'warmed' | 'degraded' | 'already' | 'unavailable' | 'failed';

/** Why counter keys were deleted (made cold). */
export type InvalidationReason = 'master_switch' | 'breaker_recovered' | 'fallback' | 'generation' | 'repair';

/** The counter service's own metrics (HTTP, Redis, MySQL, Kafka, breakers come from the platform). */
export interface CounterMetrics {
  writes: Counter<'path'>;
  fallbacks: Counter<'reason'>;
  warms: Counter<'outcome'>;
  warmDuration: Histogram;
  reads: Counter<'source'>;
  invalidations: Counter<'reason'>;
  replays: Counter;
  unknownOutcomes: Counter;
  groupSize: Histogram;
}

/** Registers the counter metrics on `registry` (once per registry). */
export function counterMetrics(registry: Registry): CounterMetrics {
  const registers = [registry];
  return {
    writes: new Counter({
      name: 'hyperscale_counter_writes_total',
      help: 'Acknowledged increments/decrements by the path that made them durable',
      labelNames: ['path'],
      registers,
    }),
    fallbacks: new Counter({
      name: 'hyperscale_counter_fallbacks_total',
      help: 'Writes that left the Redis + Kafka path, by reason',
      labelNames: ['reason'],
      registers,
    }),
    warms: new Counter({
      name: 'hyperscale_counter_warms_total',
      help: 'Warms of cold counters from MySQL, by outcome',
      labelNames: ['outcome'],
      registers,
    }),
    warmDuration: new Histogram({
      name: 'hyperscale_counter_warm_duration_seconds',
      help: 'Duration of a warm (writer barrier + MySQL read + fill)',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
    reads: new Counter({
      name: 'hyperscale_counter_reads_total',
      help: 'Counter values served, by source',
      labelNames: ['source'],
      registers,
    }),
    invalidations: new Counter({
      name: 'hyperscale_counter_invalidations_total',
      help: 'Counter keys made cold, by reason',
      labelNames: ['reason'],
      registers,
    }),
    replays: new Counter({
      name: 'hyperscale_counter_replayed_increments_total',
      help: 'Increment scripts that found their request id already applied (a re-send after a reconnect)',
      registers,
    }),
    groupSize: new Histogram({
      name: 'hyperscale_counter_increment_group_size',
      help: 'Requests carried by one applied increment (increments of one counter coalesced in one event-loop turn)',
      buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500],
      registers,
    }),
    unknownOutcomes: new Counter({
      name: 'hyperscale_counter_unknown_outcomes_total',
      help: 'Increments answered 503 because Kafka neither acknowledged nor certainly missed their event (a lost acknowledgment)',
      registers,
    }),
  };
}
