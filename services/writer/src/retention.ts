import { Counter, Gauge } from 'prom-client';
import type { Logger } from 'pino';
import type { MysqlExecutor, Registry } from '@hyperscale/platform';

/** A table whose old rows the retention loop deletes, by its time column (UTC DATETIME, indexed). */
export interface RetentionTable {
  table: 'fallback_events' | 'like_fallback_marks' | 'presence';
  column: 'created_at' | 'last_seen';
  /** Rows whose time column is older than this (MySQL's clock) are deleted. */
  retentionMs: number;
}

/** The retained tables with their time columns (the only SQL identifiers the loop uses). */
export function retentionTables(limits: { fallbackEventsMs: number; presenceMs: number }): RetentionTable[] {
  return [
    { table: 'fallback_events', column: 'created_at', retentionMs: limits.fallbackEventsMs },
    // A mark guards against the same late events as fallback_events, so it lives as long.
    { table: 'like_fallback_marks', column: 'created_at', retentionMs: limits.fallbackEventsMs },
    { table: 'presence', column: 'last_seen', retentionMs: limits.presenceMs },
  ];
}

/** Options of {@link RetentionLoop}. */
export interface RetentionOptions {
  /** The primary pool: every statement runs with its query timeout. */
  pool: MysqlExecutor;
  tables: readonly RetentionTable[];
  /** Pause between the end of a pass and the start of the next. */
  intervalMs: number;
  /** Rows per DELETE (default 1000); a pass repeats the statement until fewer rows go. */
  batchSize?: number;
  logger: Logger;
  registry: Registry;
}

/** Rows deleted per table by one pass; a table whose pass failed is absent. */
export type RetentionPassResult = Partial<Record<RetentionTable['table'], number>>;

interface RetentionMetrics {
  deleted: Counter<'table'>;
  errors: Counter<'table'>;
  lastSuccess: Gauge<'table'>;
}

function metricsOf(registry: Registry): RetentionMetrics {
  const reuse = <M>(name: string, create: () => M): M =>
    (registry.getSingleMetric(name) as M | undefined) ?? create();
  const registers = [registry];
  return {
    deleted: reuse(
      'hyperscale_writer_retention_deleted_total',
      () =>
        new Counter({
          name: 'hyperscale_writer_retention_deleted_total',
          help: 'Rows deleted by the retention loop (fallback_events, like_fallback_marks, presence).',
          labelNames: ['table'],
          registers,
        }),
    ),
    errors: reuse(
      'hyperscale_writer_retention_errors_total',
      () =>
        new Counter({
          name: 'hyperscale_writer_retention_errors_total',
          help: 'Retention passes of a table that failed (retried at the next interval).',
          labelNames: ['table'],
          registers,
        }),
    ),
    lastSuccess: reuse(
      'hyperscale_writer_retention_last_success_timestamp_seconds',
      () =>
        new Gauge({
          name: 'hyperscale_writer_retention_last_success_timestamp_seconds',
          help: 'Unix time of the last retention pass of a table that completed.',
          labelNames: ['table'],
          registers,
        }),
    ),
  };
}

/**
 * Deletes rows that only matter for a while: `fallback_events` (event ids of MySQL fallbacks, so
 * the writer skips the same delta landing late in Kafka), `like_fallback_marks` (older like events
 * a fallback write superseded) and `presence` (fallback heartbeats).
 * Every `intervalMs`, per table: `DELETE … WHERE <time> < UTC_TIMESTAMP(6) - INTERVAL … ORDER BY
 * <time> LIMIT <batch>`, repeated until a statement deletes fewer rows than the batch. Bounded
 * batches keep locks and the binlog event of each statement small; ORDER BY over the time
 * index makes the rows deterministic (statement-based replication accepts it) and walks the
 * oldest first. The cutoff is MySQL's clock, the clock that stamped the rows.
 *
 * Runs in every writer replica: concurrent passes are harmless (both delete old rows; one may wait
 * on the other's row locks, within the statement timeout). A failing table (timeout, lock wait,
 * connection refused) is logged and counted, the other tables still run, and the next pass retries.
 */
export class RetentionLoop {
  private readonly batchSize: number;
  private readonly metrics: RetentionMetrics;
  private readonly logger: Logger;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<RetentionPassResult> | undefined;
  private stopped = false;

  constructor(private readonly options: RetentionOptions) {
    this.batchSize = options.batchSize ?? 1_000;
    if (!Number.isSafeInteger(this.batchSize) || this.batchSize < 1)
      throw new RangeError('batchSize must be a positive integer');
    this.metrics = metricsOf(options.registry);
    this.logger = options.logger.child({ component: 'retention' });
  }

  /** Schedules the passes: the first after one interval, each next one an interval after the last ended. */
  start(): void {
    if (this.stopped || this.timer !== undefined) return;
    this.logger.info(
      {
        intervalMs: this.options.intervalMs,
        tables: this.options.tables.map((t) => ({ table: t.table, retentionMs: t.retentionMs })),
      },
      'retention loop started',
    );
    this.schedule();
  }

  /** Runs one pass over every table now (also used by tests); never rejects. */
  runOnce(): Promise<RetentionPassResult> {
    this.running ??= this.pass().finally(() => (this.running = undefined));
    return this.running;
  }

  /** No new pass or batch starts; resolves when the statement in flight (bounded by its timeout) ended. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      void this.runOnce().then(() => this.schedule());
    }, this.options.intervalMs);
    this.timer.unref();
  }

  private async pass(): Promise<RetentionPassResult> {
    const result: RetentionPassResult = {};
    for (const table of this.options.tables) {
      if (this.stopped) break;
      const started = performance.now();
      try {
        const deleted = await this.purge(table);
        result[table.table] = deleted;
        this.metrics.lastSuccess.set({ table: table.table }, Date.now() / 1000);
        const fields = { table: table.table, deleted, ms: Math.round(performance.now() - started) };
        if (deleted > 0) this.logger.info(fields, 'retention deleted old rows');
        else this.logger.debug(fields, 'retention found nothing to delete');
      } catch (err) {
        this.metrics.errors.inc({ table: table.table });
        this.logger.warn(
          { err, table: table.table, ms: Math.round(performance.now() - started) },
          'retention pass failed; retried at the next interval',
        );
      }
    }
    return result;
  }

  private async purge({ table, column, retentionMs }: RetentionTable): Promise<number> {
    // Identifiers come from the fixed RetentionTable union, never from input.
    const sql = `DELETE FROM ${table} WHERE ${column} < UTC_TIMESTAMP(6) - INTERVAL ? MICROSECOND ORDER BY ${column} LIMIT ?`;
    let total = 0;
    for (;;) {
      const { affectedRows } = await this.options.pool.execute(sql, [retentionMs * 1000, this.batchSize]);
      total += affectedRows;
      this.metrics.deleted.inc({ table }, affectedRows);
      if (affectedRows < this.batchSize || this.stopped) return total;
    }
  }
}
