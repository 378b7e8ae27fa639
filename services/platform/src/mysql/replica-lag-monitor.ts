import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { MysqlErrno, mysqlErrno } from './errors.js';
import { gtidTransactionsBehind, parseGtidPosition } from './gtid.js';
import { replicaMetrics } from './metrics.js';
import type { ReplicaMetrics } from './metrics.js';
import type { MysqlConnection, MysqlPool } from './pool.js';

/** How the last lag figure was obtained (most to least precise). */
export type LagSource = 'gtid_wait' | 'heartbeat' | 'seconds_behind_master' | 'behind_since' | 'unknown';

/** A snapshot of the replica's health as last measured. */
export interface ReplicaStatus {
  /** The replica answered the last probe (and no query failed on it since that probe started). */
  readonly up: boolean;
  /** Staleness in ms (an upper bound, see {@link ReplicaLagMonitor}); null when unknown. */
  readonly lagMs: number | null;
  readonly lagSource: LagSource;
  /** Transactions not yet applied (GTID difference); null when unknown. */
  readonly gtidBehind: bigint | null;
  /** `Slave_IO_Running = Yes` / `Slave_SQL_Running = Yes`; null when not a replica or unknown. */
  readonly ioRunning: boolean | null;
  readonly sqlRunning: boolean | null;
  /** `Seconds_Behind_Master` (coarse, NULL when a thread is stopped). */
  readonly secondsBehindMaster: number | null;
  /** Wall-clock ms of the last completed probe (0 = never). */
  readonly checkedAt: number;
  /** Message of the last replica error while down. */
  readonly lastError: string | undefined;
}

/** What the router needs from a health source; implemented by {@link ReplicaLagMonitor}. */
export interface ReplicaStatusSource {
  status(): ReplicaStatus;
  /** A query just failed on the replica at connection level: treat it as down until a later probe succeeds. */
  noteReplicaFailure(err: unknown): void;
}

/** Options of {@link ReplicaLagMonitor}. */
export interface ReplicaLagMonitorOptions {
  readonly primary: MysqlPool;
  readonly replica: MysqlPool;
  /** Probe period in ms (default 500). Also the heartbeat write period. */
  readonly intervalMs?: number;
  /** Deadline of each probe statement in ms (default: the replica pool's `queryTimeoutMs`, max 2000). */
  readonly probeTimeoutMs?: number;
  /** How long the replica may take to reach the primary's position before it counts as behind (default 50 ms). */
  readonly catchUpWaitMs?: number;
  /** Heartbeat table (created by migration 002) — `false` disables heartbeat writes (another process writes them). */
  readonly heartbeat?: { readonly table?: string; readonly id?: number; readonly write?: boolean };
  /**
   * Safety net for a monitor that stopped probing: the status counts as down when no probe
   * succeeded for this long (default 3 × interval + 8 × probe timeout, more than a probe can take).
   */
  readonly staleAfterMs?: number;
  readonly logger: Logger;
  readonly registry: Registry;
}

interface SlaveStatusRow {
  Slave_IO_Running?: unknown;
  Slave_SQL_Running?: unknown;
  Seconds_Behind_Master?: unknown;
  Last_SQL_Error?: unknown;
  Last_IO_Error?: unknown;
}

const IDENT_RE = /^[A-Za-z0-9_]{1,64}$/;

const INITIAL: ReplicaStatus = {
  up: false,
  lagMs: null,
  lagSource: 'unknown',
  gtidBehind: null,
  ioRunning: null,
  sqlRunning: null,
  secondsBehindMaster: null,
  checkedAt: 0,
  lastError: 'not probed yet',
};

/**
 * Measures replica health and staleness every `intervalMs` and exports
 * `hyperscale_mysql_replica_up`, `hyperscale_mysql_replica_lag_seconds`,
 * `hyperscale_mysql_replica_gtid_behind`, `hyperscale_mysql_replica_thread_running{thread}`.
 *
 * Design — one probe:
 * 1. Primary: upsert the heartbeat row (`ts = UTC_TIMESTAMP(6)`), then read `@@gtid_binlog_pos`
 *    and `UTC_TIMESTAMP(6)` → position P0 at primary time T0. The heartbeat makes the primary
 *    never idle, so a replica whose SQL thread stopped falls further behind every interval.
 * 2. Replica: `MASTER_GTID_WAIT(P0, catchUpWaitMs)`. If it returns 0 the replica holds everything
 *    committed up to T0, so its staleness is at most the time elapsed since P0 was read (a few ms):
 *    precise for a healthy replica, no clock involved (`gtid_wait`).
 * 3. Otherwise the replica is behind: lag = T0 − (heartbeat ts the replica has applied) + elapsed.
 *    Both timestamps come from the PRIMARY's clock (the replica only holds a copy of the row), so
 *    no cross-host clock skew enters (`heartbeat`). It is an upper bound that overstates by at
 *    most one interval (the first unapplied transaction is at most one heartbeat newer), which
 *    errs toward reading the primary. It grows without bound while replication is stopped.
 * 4. Without a heartbeat table: `Seconds_Behind_Master`, and when that is NULL (thread stopped)
 *    the time since the replica was first seen behind (`behind_since`).
 * 5. Also read: `@@gtid_slave_pos` (transactions behind, per domain) and `SHOW SLAVE STATUS`
 *    (IO/SQL thread state), for metrics and diagnosis.
 * If the primary cannot be probed, lag is unknown (null): the router then keeps reading the
 * replica, since the primary would not serve reads either. If the replica fails any step it is
 * down. Every statement has a deadline, so a frozen server costs one probe timeout, and the
 * monitor keeps probing and reports the replica up as soon as a probe succeeds again.
 */
export class ReplicaLagMonitor implements ReplicaStatusSource {
  readonly #primary: MysqlPool;
  readonly #replica: MysqlPool;
  readonly #intervalMs: number;
  readonly #probeTimeoutMs: number;
  readonly #catchUpWaitMs: number;
  readonly #staleAfterMs: number;
  readonly #hbTable: string;
  readonly #hbId: number;
  readonly #hbWrite: boolean;
  readonly #logger: Logger;
  readonly #metrics: ReplicaMetrics;
  #status: ReplicaStatus = INITIAL;
  #lastSuccessAt = -Infinity;
  #lastSuccessStartedAt = -Infinity;
  #failureNotedAt = -Infinity;
  #behindSince: number | null = null;
  #heartbeatMissingLogged = false;
  #timer: NodeJS.Timeout | undefined;
  #running = false;
  #inflight: Promise<ReplicaStatus> | undefined;

  constructor(options: ReplicaLagMonitorOptions) {
    this.#primary = options.primary;
    this.#replica = options.replica;
    this.#intervalMs = options.intervalMs ?? 500;
    this.#probeTimeoutMs = options.probeTimeoutMs ?? Math.min(options.replica.queryTimeoutMs, 2_000);
    this.#catchUpWaitMs = options.catchUpWaitMs ?? 50;
    this.#staleAfterMs =
      options.staleAfterMs ?? 3 * this.#intervalMs + 8 * this.#probeTimeoutMs + this.#catchUpWaitMs;
    const table = options.heartbeat?.table ?? 'replication_heartbeat';
    if (!IDENT_RE.test(table)) throw new RangeError(`invalid heartbeat table name ${JSON.stringify(table)}`);
    this.#hbTable = `\`${table}\``;
    this.#hbId = options.heartbeat?.id ?? 1;
    this.#hbWrite = options.heartbeat?.write ?? true;
    this.#logger = options.logger.child({ component: 'replica-lag-monitor' });
    this.#metrics = replicaMetrics(options.registry);
    this.#metrics.up.set(0);
    this.#metrics.lagSeconds.set(Number.NaN);
  }

  /**
   * The last measurement. Reports down when no probe succeeded within `staleAfterMs` (monitor not
   * started, stopped, or stuck), so a router never trusts an old "up".
   */
  status(): ReplicaStatus {
    const s = this.#status;
    if (!s.up) return s;
    if (this.#failureNotedAt > this.#lastSuccessStartedAt)
      return { ...s, up: false, lagMs: null, lagSource: 'unknown', lastError: 'query failure reported' };
    if (performance.now() - this.#lastSuccessAt > this.#staleAfterMs)
      return { ...s, up: false, lagMs: null, lagSource: 'unknown', lastError: 'status stale' };
    return s;
  }

  /** Marks the replica down at once; only a probe that starts after this call can bring it back up. */
  noteReplicaFailure(err: unknown): void {
    this.#failureNotedAt = performance.now();
    this.#metrics.up.set(0);
    this.#metrics.lagSeconds.set(Number.NaN);
    this.#logger.debug({ err }, 'replica failure reported by a query');
  }

  /** Runs the first probe (so `status()` is meaningful when this resolves), then probes every interval. Idempotent. */
  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    await this.probe();
    this.#schedule();
  }

  /** Stops probing and waits for an in-flight probe (bounded by its deadlines). */
  async stop(): Promise<void> {
    this.#running = false;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#inflight?.catch(() => undefined);
  }

  /** Runs one probe now (joining one already in flight) and returns the new status. Never throws. */
  probe(): Promise<ReplicaStatus> {
    this.#inflight ??= this.#probe().finally(() => {
      this.#inflight = undefined;
    });
    return this.#inflight;
  }

  #schedule(): void {
    if (!this.#running) return;
    this.#timer = setTimeout(() => {
      void this.probe().finally(() => this.#schedule());
    }, this.#intervalMs);
    this.#timer.unref();
  }

  async #probe(): Promise<ReplicaStatus> {
    const startedAt = performance.now();
    const primary = await this.#probePrimary();
    let next: ReplicaStatus;
    try {
      next = await this.#withConnection(this.#replica, (conn) => this.#probeReplica(conn, primary));
      this.#lastSuccessAt = performance.now();
      this.#lastSuccessStartedAt = startedAt;
      if (!this.#status.up)
        this.#logger.info({ lagMs: next.lagMs, lagSource: next.lagSource }, 'replica is up');
    } catch (err) {
      this.#metrics.probeFailures.inc({ server: 'replica' });
      if (this.#status.up || this.#status === INITIAL)
        this.#logger.warn({ err }, 'replica is down (probe failed)');
      next = {
        ...INITIAL,
        checkedAt: Date.now(),
        lastError: err instanceof Error ? err.message : String(err),
      };
      this.#behindSince = null;
    }
    this.#status = next;
    const reported = this.status();
    this.#metrics.up.set(reported.up ? 1 : 0);
    this.#metrics.lagSeconds.set(reported.up && reported.lagMs !== null ? reported.lagMs / 1000 : Number.NaN);
    if (next.gtidBehind !== null) this.#metrics.gtidBehind.set(Number(next.gtidBehind));
    this.#metrics.threadRunning.set({ thread: 'io' }, next.ioRunning === true ? 1 : 0);
    this.#metrics.threadRunning.set({ thread: 'sql' }, next.sqlRunning === true ? 1 : 0);
    return reported;
  }

  /** Like `pool.withConnection`, but waits for a connection at most one probe timeout. */
  async #withConnection<T>(pool: MysqlPool, fn: (conn: MysqlConnection) => Promise<T>): Promise<T> {
    const conn = await pool.acquire(this.#probeTimeoutMs);
    try {
      return await fn(conn);
    } finally {
      conn.release();
    }
  }

  /** Heartbeat + position on the primary; null when the primary could not be probed. */
  async #probePrimary(): Promise<{ pos: string; nowMs: number; readAt: number } | null> {
    const timeoutMs = this.#probeTimeoutMs;
    try {
      return await this.#withConnection(this.#primary, async (conn) => {
        if (this.#hbWrite) {
          try {
            await conn.execute(
              `INSERT INTO ${this.#hbTable} (id, ts) VALUES (?, UTC_TIMESTAMP(6)) ON DUPLICATE KEY UPDATE ts = VALUES(ts)`,
              [this.#hbId],
              { timeoutMs },
            );
          } catch (err) {
            if (mysqlErrno(err) !== MysqlErrno.noSuchTable) throw err;
            this.#warnHeartbeatMissing(err);
          }
        }
        const [row] = await conn.select<{ pos: string | null; now: Date }>(
          'SELECT @@gtid_binlog_pos AS pos, UTC_TIMESTAMP(6) AS now',
          [],
          { timeoutMs },
        );
        if (row === undefined) return null;
        return { pos: row.pos ?? '', nowMs: row.now.getTime(), readAt: performance.now() };
      });
    } catch (err) {
      this.#metrics.probeFailures.inc({ server: 'primary' });
      this.#logger.debug({ err }, 'primary probe failed; replica lag unknown this round');
      return null;
    }
  }

  async #probeReplica(
    conn: MysqlConnection,
    primary: { pos: string; nowMs: number; readAt: number } | null,
  ): Promise<ReplicaStatus> {
    const timeoutMs = this.#probeTimeoutMs;
    let waitResult: number | null = null;
    let caughtUpAt = 0;
    if (primary !== null) {
      const [w] = await conn.select<{ w: number | string | null }>(
        'SELECT MASTER_GTID_WAIT(?, ?) AS w',
        [primary.pos, this.#catchUpWaitMs / 1000],
        {
          timeoutMs: timeoutMs + this.#catchUpWaitMs,
        },
      );
      waitResult = w?.w === null || w?.w === undefined ? null : Number(w.w);
      caughtUpAt = performance.now();
    }
    const [posRow] = await conn.select<{ pos: string | null }>('SELECT @@gtid_slave_pos AS pos', [], {
      timeoutMs,
    });
    const slaveRows = await conn.select<SlaveStatusRow>('SHOW SLAVE STATUS', [], { timeoutMs });
    const slave = slaveRows[0];
    const ioRunning = slave === undefined ? null : slave.Slave_IO_Running === 'Yes';
    const sqlRunning = slave === undefined ? null : slave.Slave_SQL_Running === 'Yes';
    const sbmRaw = slave?.Seconds_Behind_Master;
    const secondsBehindMaster =
      sbmRaw === null || sbmRaw === undefined || sbmRaw === '' ? null : Number(sbmRaw);

    let gtidBehind: bigint | null = null;
    if (primary !== null) {
      try {
        gtidBehind = gtidTransactionsBehind(
          parseGtidPosition(primary.pos),
          parseGtidPosition(posRow?.pos ?? ''),
        );
      } catch (err) {
        this.#logger.warn({ err }, 'unparseable GTID position');
      }
    }

    let lagMs: number | null = null;
    let lagSource: LagSource = 'unknown';
    const now = performance.now();
    if (primary !== null && waitResult === 0) {
      lagMs = caughtUpAt - primary.readAt;
      lagSource = 'gtid_wait';
      this.#behindSince = null;
    } else if (primary !== null) {
      this.#behindSince ??= primary.readAt - this.#catchUpWaitMs;
      const hbMs = await this.#replicaHeartbeat(conn);
      if (hbMs !== null) {
        lagMs = Math.max(0, primary.nowMs - hbMs) + (now - primary.readAt);
        lagSource = 'heartbeat';
      } else if (secondsBehindMaster !== null) {
        lagMs = secondsBehindMaster * 1000;
        lagSource = 'seconds_behind_master';
      } else {
        lagMs = now - this.#behindSince;
        lagSource = 'behind_since';
      }
    } else if (secondsBehindMaster !== null) {
      lagMs = secondsBehindMaster * 1000;
      lagSource = 'seconds_behind_master';
    }
    if (lagMs !== null) lagMs = Math.round(lagMs * 10) / 10;
    const lastError =
      slave === undefined ? undefined : (errorText(slave.Last_SQL_Error) ?? errorText(slave.Last_IO_Error));
    return {
      up: true,
      lagMs,
      lagSource,
      gtidBehind,
      ioRunning,
      sqlRunning,
      secondsBehindMaster,
      checkedAt: Date.now(),
      lastError,
    };
  }

  async #replicaHeartbeat(conn: MysqlConnection): Promise<number | null> {
    try {
      const [row] = await conn.select<{ ts: Date }>(
        `SELECT ts FROM ${this.#hbTable} WHERE id = ?`,
        [this.#hbId],
        { timeoutMs: this.#probeTimeoutMs },
      );
      return row === undefined ? null : row.ts.getTime();
    } catch (err) {
      if (mysqlErrno(err) !== MysqlErrno.noSuchTable) throw err;
      return null;
    }
  }

  #warnHeartbeatMissing(err: unknown): void {
    if (this.#heartbeatMissingLogged) return;
    this.#heartbeatMissingLogged = true;
    this.#logger.warn(
      { err },
      'heartbeat table missing on the primary (run migrations); lag falls back to Seconds_Behind_Master',
    );
  }
}

function errorText(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}
