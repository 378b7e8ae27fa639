import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import {
  isConnectionLevelError,
  isRetryableTransactionError,
  MysqlCommitOutcomeUnknownError,
  MysqlErrno,
  mysqlErrno,
} from './errors.js';
import type { MysqlPoolName } from './errors.js';
import { mysqlMetrics } from './metrics.js';
import type { MysqlMetrics } from './metrics.js';
import type {
  MysqlConnection,
  MysqlExecutor,
  MysqlPool,
  MysqlPools,
  SqlParam,
  StatementOptions,
} from './pool.js';
import { RecentWriters } from './recent-writers.js';
import type { ReplicaStatusSource } from './replica-lag-monitor.js';
import { decideRead } from './routing.js';
import type { ReadDecision, ReadReason } from './routing.js';

/** Options of {@link MysqlRouter}. */
export interface MysqlRouterOptions {
  readonly pools: MysqlPools;
  /**
   * Replica health and lag (normally a started {@link ReplicaLagMonitor}). Without one the replica
   * is assumed healthy and only failed queries divert reads to the primary.
   */
  readonly replicaStatus?: ReplicaStatusSource;
  /** How long a caller's reads stay on the primary after its write (default 5000 ms). */
  readonly stickyWindowMs?: number;
  /** Replica lag above which reads go to the primary (default 1000 ms). */
  readonly maxReplicaLagMs?: number;
  /** Cap on remembered recent writers (default 100 000, least recent evicted first). */
  readonly maxTrackedCallers?: number;
  /**
   * GTID read-your-writes (default false): after a write, remember the transaction's `@@last_gtid`;
   * a recent writer then reads the replica if `MASTER_GTID_WAIT(gtid, gtidWaitMs)` confirms the
   * replica applied it, else the primary. Costs one extra round trip per sticky read and write.
   */
  readonly gtidReadYourWrites?: boolean;
  /** Max wait for the replica to apply a caller's GTID (default 50 ms). */
  readonly gtidWaitMs?: number;
  /** Attempts of a write transaction on deadlock / lock-wait timeout (default 3). */
  readonly maxWriteAttempts?: number;
  readonly logger: Logger;
  readonly registry: Registry;
  /** Monotonic clock for the sticky window (tests). */
  readonly now?: () => number;
}

/** The pool a read should use and why. */
export interface ReadChoice {
  readonly pool: MysqlPool;
  readonly target: MysqlPoolName;
  readonly reason: ReadReason;
}

/** Rows of a routed read plus where they came from (for tests and metrics). */
export interface ReadResult<T> {
  readonly rows: T[];
  readonly target: MysqlPoolName;
  readonly reason: ReadReason;
}

/** Per-read options. */
export interface ReadOptions extends StatementOptions {
  /** Whose read it is (e.g. the JWT subject); enables sticky read-your-writes. */
  readonly callerId?: string | undefined;
}

/** Per-write options. */
export interface WriteOptions {
  /** Whose write it is; their reads stick to the primary for the sticky window after commit. */
  readonly callerId?: string | undefined;
  /** Overrides `maxWriteAttempts` for this transaction (1 = no retry). */
  readonly maxAttempts?: number;
}

/**
 * Read/write splitting over a primary + replica pair (mysql2 has none). Writes go to the primary
 * in a transaction; reads go to the replica unless the caller wrote recently (sticky, in-process:
 * a caller served by another process is not sticky there — pass the GTID along or route the caller
 * to one process if that matters), the replica lags past `maxReplicaLagMs`, or it is down. The
 * rule itself is {@link decideRead}. Every read and its routing reason is counted in
 * `hyperscale_mysql_reads_total{target,reason}`.
 */
export class MysqlRouter {
  readonly #pools: MysqlPools;
  readonly #status: ReplicaStatusSource | undefined;
  readonly #maxLagMs: number;
  readonly #gtidMode: boolean;
  readonly #gtidWaitMs: number;
  readonly #maxWriteAttempts: number;
  readonly #writers: RecentWriters;
  readonly #metrics: MysqlMetrics;
  readonly #logger: Logger;
  #evictionsSeen = 0;

  constructor(options: MysqlRouterOptions) {
    this.#pools = options.pools;
    this.#status = options.replicaStatus;
    this.#maxLagMs = options.maxReplicaLagMs ?? 1000;
    this.#gtidMode = options.gtidReadYourWrites ?? false;
    this.#gtidWaitMs = options.gtidWaitMs ?? 50;
    this.#maxWriteAttempts = Math.max(1, options.maxWriteAttempts ?? 3);
    this.#writers = new RecentWriters({
      windowMs: options.stickyWindowMs ?? 5000,
      maxEntries: options.maxTrackedCallers ?? 100_000,
      ...(options.now ? { now: options.now } : {}),
    });
    this.#metrics = mysqlMetrics(options.registry);
    this.#logger = options.logger.child({ component: 'mysql-router' });
  }

  /** The primary pool, for statements that must see the latest data or change it outside {@link write}. */
  get primary(): MysqlPool {
    return this.#pools.primary;
  }

  /**
   * Records that `callerId` just wrote (done automatically by {@link write} with a `callerId`; call
   * it yourself after writing through {@link primary} directly). `gtid` enables the GTID check.
   */
  markWrote(callerId: string, gtid?: string): void {
    this.#writers.mark(callerId, gtid);
    const evictions = this.#writers.evictions;
    if (evictions > this.#evictionsSeen) {
      this.#metrics.stickyEvictions.inc(evictions - this.#evictionsSeen);
      this.#evictionsSeen = evictions;
    }
  }

  /** The routing decision for a caller right now (pure; see {@link decideRead}). */
  decide(callerId?: string): ReadDecision {
    const status = this.#status?.status();
    const recent = callerId === undefined ? undefined : this.#writers.get(callerId);
    return decideRead({
      replicaConfigured: this.#pools.replica !== null,
      replicaUp: status?.up ?? true,
      replicaLagMs: status?.lagMs ?? null,
      maxReplicaLagMs: this.#maxLagMs,
      recentWrite: recent,
      gtidReadYourWrites: this.#gtidMode,
    });
  }

  /**
   * The pool a caller's read should use, synchronously. Counts no metric (use {@link readQuery}
   * for counted reads). A GTID-eligible sticky caller gets the primary here, since confirming the
   * GTID needs a round trip.
   */
  read(callerId?: string): ReadChoice {
    const d = this.decide(callerId);
    const replica = this.#pools.replica;
    if (d.target === 'replica' && d.waitForGtid === undefined && replica !== null)
      return { pool: replica, target: 'replica', reason: d.reason };
    return { pool: this.#pools.primary, target: 'primary', reason: d.reason };
  }

  /**
   * Runs one prepared read on the pool chosen by {@link decideRead} and reports which pool served it.
   * If the replica fails at connection level (down, timeout, too many connections) or does not
   * have the table/database yet, the read is retried once on the primary with reason
   * `replica_down`, and the status source is told so later reads skip the replica at once. Worst
   * case duration is therefore two statement deadlines. SQL errors are not retried.
   */
  async readQuery<T extends object = Record<string, unknown>>(
    sql: string,
    params: readonly SqlParam[] = [],
    options: ReadOptions = {},
  ): Promise<ReadResult<T>> {
    const decision = this.decide(options.callerId);
    const replica = this.#pools.replica;
    if (decision.target === 'replica' && replica !== null) {
      try {
        const rows = await replica.withConnection(async (conn) => {
          if (
            decision.waitForGtid !== undefined &&
            !(await this.#replicaHasGtid(conn, decision.waitForGtid, replica))
          )
            return null;
          return conn.select<T>(sql, params, options);
        });
        if (rows !== null) return this.#count({ rows, target: 'replica', reason: decision.reason });
        // GTID not yet applied on the replica: the caller must read its write from the primary.
        return this.#count({
          rows: await this.#pools.primary.select<T>(sql, params, options),
          target: 'primary',
          reason: 'sticky',
        });
      } catch (err) {
        if (!isReplicaUnavailable(err)) throw err;
        if (isConnectionLevelError(err)) this.#status?.noteReplicaFailure(err);
        this.#logger.debug({ err }, 'replica read failed; retrying on the primary');
        return this.#count({
          rows: await this.#pools.primary.select<T>(sql, params, options),
          target: 'primary',
          reason: 'replica_down',
        });
      }
    }
    return this.#count({
      rows: await this.#pools.primary.select<T>(sql, params, options),
      target: 'primary',
      reason: decision.reason,
    });
  }

  /**
   * Runs `fn` inside a transaction on the primary (START TRANSACTION … COMMIT; ROLLBACK on any
   * error, including errors thrown by `fn` itself). A deadlock victim (1213) or lock-wait timeout
   * (1205) re-runs the whole `fn` on a fresh transaction, up to `maxAttempts` with jittered
   * backoff, so `fn` must be safe to re-run (no side effects outside the connection). After
   * COMMIT the caller (if given) becomes sticky. A COMMIT without answer throws
   * {@link MysqlCommitOutcomeUnknownError} and still marks the caller sticky.
   */
  async write<T>(fn: (conn: MysqlExecutor) => Promise<T>, options: WriteOptions = {}): Promise<T> {
    const maxAttempts = Math.max(1, options.maxAttempts ?? this.#maxWriteAttempts);
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await this.#transactionOnce(fn, options.callerId);
      } catch (err) {
        if (attempt >= maxAttempts || !isRetryableTransactionError(err)) throw err;
        this.#metrics.transactions.inc({ outcome: 'retry' });
        const backoffMs = Math.min(200, 10 * 2 ** (attempt - 1)) * (0.5 + Math.random());
        this.#logger.debug(
          { err, attempt, backoffMs },
          'transaction retried after deadlock/lock wait timeout',
        );
        await sleep(backoffMs);
      }
    }
  }

  async #transactionOnce<T>(
    fn: (conn: MysqlExecutor) => Promise<T>,
    callerId: string | undefined,
  ): Promise<T> {
    const conn = await this.#pools.primary.acquire();
    try {
      await conn.unprepared('START TRANSACTION');
      let result: T;
      try {
        result = await fn(conn);
      } catch (err) {
        await this.#rollbackQuietly(conn);
        this.#metrics.transactions.inc({ outcome: 'rollback' });
        throw err;
      }
      try {
        await conn.unprepared('COMMIT');
      } catch (err) {
        if (isConnectionLevelError(err)) {
          this.#metrics.transactions.inc({ outcome: 'unknown' });
          if (callerId !== undefined) this.markWrote(callerId);
          throw new MysqlCommitOutcomeUnknownError({ cause: err });
        }
        await this.#rollbackQuietly(conn);
        this.#metrics.transactions.inc({ outcome: 'rollback' });
        throw err;
      }
      this.#metrics.transactions.inc({ outcome: 'commit' });
      if (callerId !== undefined) this.markWrote(callerId, await this.#lastGtid(conn));
      return result;
    } finally {
      conn.release();
    }
  }

  async #rollbackQuietly(conn: MysqlConnection): Promise<void> {
    if (!conn.usable) return; // destroyed: the server rolls back the session
    try {
      await conn.unprepared('ROLLBACK');
    } catch (err) {
      this.#logger.debug({ err }, 'rollback failed; destroying the connection');
      conn.destroy();
    }
  }

  async #lastGtid(conn: MysqlConnection): Promise<string | undefined> {
    if (!this.#gtidMode) return undefined;
    try {
      const [row] = await conn.select<{ g: string | null }>('SELECT @@last_gtid AS g');
      return row?.g ?? undefined;
    } catch (err) {
      this.#logger.debug({ err }, 'could not read @@last_gtid; caller stays on the primary for the window');
      return undefined;
    }
  }

  async #replicaHasGtid(conn: MysqlConnection, gtid: string, replica: MysqlPool): Promise<boolean> {
    const [row] = await conn.select<{ w: number | string | null }>(
      'SELECT MASTER_GTID_WAIT(?, ?) AS w',
      [gtid, this.#gtidWaitMs / 1000],
      {
        timeoutMs: replica.queryTimeoutMs + this.#gtidWaitMs,
      },
    );
    return row?.w !== null && row?.w !== undefined && Number(row.w) === 0;
  }

  #count<T>(result: ReadResult<T>): ReadResult<T> {
    this.#metrics.reads.inc({ target: result.target, reason: result.reason });
    return result;
  }
}

/** Replica-side failures that the primary can likely serve instead. */
function isReplicaUnavailable(err: unknown): boolean {
  if (isConnectionLevelError(err)) return true;
  const errno = mysqlErrno(err);
  return errno === MysqlErrno.noSuchTable || errno === MysqlErrno.badDb;
}
