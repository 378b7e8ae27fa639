import { Counter, Histogram } from 'prom-client';
import type { Registry } from '@hyperscale/platform';

/** The writer's own series (the consumer's lag, retries and dead letters come from the platform). */
export interface WriterMetrics {
  /** Events that went through a committed transaction (after de-duplication). */
  readonly applied: Counter<'topic'>;
  /** Events not applied again because their offset lies below the stored `next_offset`. */
  readonly skipped: Counter<'topic' | 'reason'>;
  /** Applied events that changed nothing: absorbed by a later event, or already true in MySQL. */
  readonly noop: Counter<'topic' | 'reason'>;
  /** Rows inserted/updated/deleted by committed transactions, all tables together. */
  readonly rowsChanged: Counter<'topic'>;
  /**
   * Partition batches by the outcome of their transaction: commit, empty (all duplicates), retry
   * (deadlock etc., or a shared transaction that failed and is re-run per batch), failed.
   */
  readonly transactions: Counter<'topic' | 'outcome'>;
  /** COMMITs of writer transactions (one per transaction, however many partition batches it carried). */
  readonly commits: Counter;
  /** Partition batches with events applied, per committed transaction. */
  readonly batchesPerCommit: Histogram;
  readonly batchSize: Histogram<'topic'>;
  readonly applyDuration: Histogram<'topic'>;
}

const BATCH_BUCKETS = [1, 5, 10, 25, 50, 100, 250, 500, 1000, 2000, 5000];
const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

function getOrCreate<M>(registry: Registry, name: string, create: () => M): M {
  const existing = registry.getSingleMetric(name);
  return existing === undefined ? create() : (existing as M);
}

/**
 * Registers (or, when a pipeline was already built on `registry`, reuses) the writer's metrics.
 * Labels stay low-cardinality: `topic` is one of a few configured topics, `reason`/`outcome` are
 * fixed words — never partitions, posts or users.
 */
export function writerMetrics(registry: Registry): WriterMetrics {
  const registers = [registry];
  return {
    applied: getOrCreate(
      registry,
      'hyperscale_writer_events_applied_total',
      () =>
        new Counter({
          name: 'hyperscale_writer_events_applied_total',
          help: 'Events applied to MySQL by a committed transaction (duplicates excluded).',
          labelNames: ['topic'],
          registers,
        }),
    ),
    skipped: getOrCreate(
      registry,
      'hyperscale_writer_events_skipped_total',
      () =>
        new Counter({
          name: 'hyperscale_writer_events_skipped_total',
          help: 'Events not applied because MySQL already holds them (offset below the stored next_offset).',
          labelNames: ['topic', 'reason'],
          registers,
        }),
    ),
    noop: getOrCreate(
      registry,
      'hyperscale_writer_events_noop_total',
      () =>
        new Counter({
          name: 'hyperscale_writer_events_noop_total',
          help: 'Applied events that changed no row: collapsed into a later event of the same key, already the state in MySQL, or left out for a fallback write.',
          labelNames: ['topic', 'reason'],
          registers,
        }),
    ),
    rowsChanged: getOrCreate(
      registry,
      'hyperscale_writer_rows_changed_total',
      () =>
        new Counter({
          name: 'hyperscale_writer_rows_changed_total',
          help: 'Rows inserted, updated or deleted by committed writer transactions.',
          labelNames: ['topic'],
          registers,
        }),
    ),
    transactions: getOrCreate(
      registry,
      'hyperscale_writer_transactions_total',
      () =>
        new Counter({
          name: 'hyperscale_writer_transactions_total',
          help: 'Partition batches by the outcome of their transaction (commit, empty = every event a duplicate, retry, failed).',
          labelNames: ['topic', 'outcome'],
          registers,
        }),
    ),
    commits: getOrCreate(
      registry,
      'hyperscale_writer_commits_total',
      () =>
        new Counter({
          name: 'hyperscale_writer_commits_total',
          help: 'Committed writer transactions (one transaction may carry the batches of several partitions).',
          registers,
        }),
    ),
    batchesPerCommit: getOrCreate(
      registry,
      'hyperscale_writer_batches_per_commit',
      () =>
        new Histogram({
          name: 'hyperscale_writer_batches_per_commit',
          help: 'Partition batches with events applied by one committed writer transaction.',
          buckets: [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64],
          registers,
        }),
    ),
    batchSize: getOrCreate(
      registry,
      'hyperscale_writer_batch_size',
      () =>
        new Histogram({
          name: 'hyperscale_writer_batch_size',
          help: 'Events per partition batch handed to the writer (before de-duplication).',
          labelNames: ['topic'],
          buckets: BATCH_BUCKETS,
          registers,
        }),
    ),
    applyDuration: getOrCreate(
      registry,
      'hyperscale_writer_apply_duration_seconds',
      () =>
        new Histogram({
          name: 'hyperscale_writer_apply_duration_seconds',
          help: 'Time to apply one partition batch: connection, transaction (with its retries) and COMMIT.',
          labelNames: ['topic'],
          buckets: DURATION_BUCKETS,
          registers,
        }),
    ),
  };
}
