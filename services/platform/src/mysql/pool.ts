import mysql from 'mysql2/promise';
import type {
  Pool,
  PoolConnection,
  ResultSetHeader,
  RowDataPacket,
  TypedParameterValue,
} from 'mysql2/promise';
import type { Logger } from 'pino';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { isConnectionLevelError, MysqlTimeoutError } from './errors.js';
import type { MysqlPoolName } from './errors.js';
import { mysqlMetrics } from './metrics.js';
import type { MysqlMetrics } from './metrics.js';
import { ServerThreadKiller } from './server-thread-killer.js';

/**
 * A bind parameter. `undefined` is rejected by mysql2: pass `null` for SQL NULL. Integers (a
 * `bigint`, or a `number` that is a safe integer) are bound as BIGINT, see {@link bindParams}.
 */
export type SqlParam = string | number | bigint | boolean | Date | Buffer | null;

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;

/**
 * Converts parameters to what goes on the wire. mysql2 sends a JS `number` as DOUBLE and a
 * `bigint` as a string unless the server's PREPARE metadata says the placeholder is an integer,
 * which it does not for expressions: `SET value = value + ?` would then be computed in floating
 * point and a counter beyond 2^53 silently rounded. Binding every integer as BIGINT (LONGLONG)
 * keeps such arithmetic exact. Non-integer numbers stay DOUBLE.
 * @throws RangeError for a bigint outside the signed/unsigned 64-bit range.
 */
export function bindParams(params: readonly SqlParam[]): (SqlParam | TypedParameterValue)[] {
  return params.map((p) => {
    if (typeof p === 'bigint') {
      if (p >= INT64_MIN && p <= INT64_MAX) return mysql.TypedParameter.LONGLONG(p);
      if (p > INT64_MAX && p <= UINT64_MAX) return mysql.TypedParameter.LONGLONG.unsigned(p);
      throw new RangeError(`integer parameter ${p} does not fit in 64 bits`);
    }
    if (typeof p === 'number' && Number.isSafeInteger(p)) return mysql.TypedParameter.LONGLONG(p);
    return p;
  });
}

/** Per-statement overrides. */
export interface StatementOptions {
  /** Deadline for this statement in ms (default: the pool's `queryTimeoutMs`). */
  readonly timeoutMs?: number;
}

/** Outcome of an INSERT/UPDATE/DELETE. `insertId` is a string so 64-bit ids stay exact. */
export interface WriteResult {
  readonly affectedRows: number;
  readonly insertId: string;
  readonly warningStatus: number;
}

/**
 * Something that runs prepared statements: a pool (one auto-committed statement per call) or a
 * connection inside a transaction. Rows are returned as the server sent them: BIGINT and DECIMAL
 * as strings (exact, convert with `BigInt`), DATETIME/TIMESTAMP as `Date` in UTC, DATE as
 * `'YYYY-MM-DD'` strings (a calendar day has no time zone). The row type `T` is not checked at
 * run time; validate rows whose shape you do not control.
 */
export interface MysqlExecutor {
  select<T extends object = Record<string, unknown>>(
    sql: string,
    params?: readonly SqlParam[],
    options?: StatementOptions,
  ): Promise<T[]>;
  execute(sql: string, params?: readonly SqlParam[], options?: StatementOptions): Promise<WriteResult>;
}

interface ConnectionContext {
  readonly pool: MysqlPoolName;
  readonly queryTimeoutMs: number;
  readonly metrics: MysqlMetrics;
  readonly logger: Logger;
  /** Absent when the pool was built with `killTimedOutSessions: false`. */
  readonly killer: ServerThreadKiller | undefined;
}

type Phase = 'query' | 'admin';

/**
 * One pooled connection checked out of a {@link MysqlPool}. Every statement has a deadline that
 * covers the implicit PREPARE as well as the EXECUTE (mysql2's own `timeout` only starts after
 * PREPARE, and leaves the timed-out command queued on the socket); when it expires the connection
 * is destroyed, not returned to the pool, and its session is killed on the server (see
 * {@link ServerThreadKiller}: otherwise a statement stuck on a lock would still run later). Connection-level errors also mark it for destruction on
 * {@link release}. Always call {@link release} (in a `finally`).
 */
export class MysqlConnection implements MysqlExecutor {
  readonly #raw: PoolConnection;
  readonly #ctx: ConnectionContext;
  #broken = false;
  #released = false;

  /** @internal use {@link MysqlPool.acquire}. */
  constructor(raw: PoolConnection, ctx: ConnectionContext) {
    this.#raw = raw;
    this.#ctx = ctx;
  }

  /** Which pool this connection came from. */
  get pool(): MysqlPoolName {
    return this.#ctx.pool;
  }

  /** False once a timeout or connection-level error made the connection unusable. */
  get usable(): boolean {
    return !this.#broken && !this.#released;
  }

  /** Runs a prepared SELECT (or any statement returning rows) and returns its rows. */
  async select<T extends object = Record<string, unknown>>(
    sql: string,
    params: readonly SqlParam[] = [],
    options?: StatementOptions,
  ): Promise<T[]> {
    const rows = await this.#run('query', options?.timeoutMs, (timeout) =>
      this.#raw.execute<RowDataPacket[]>({ sql, timeout }, bindParams(params)),
    );
    return rows as unknown as T[];
  }

  /** Runs a prepared data-changing statement and returns its counts. */
  async execute(
    sql: string,
    params: readonly SqlParam[] = [],
    options?: StatementOptions,
  ): Promise<WriteResult> {
    const header = await this.#run('query', options?.timeoutMs, (timeout) =>
      this.#raw.execute<ResultSetHeader>({ sql, timeout }, bindParams(params)),
    );
    return {
      affectedRows: header.affectedRows,
      insertId: String(header.insertId),
      warningStatus: header.warningStatus,
    };
  }

  /**
   * Runs a FIXED statement over the text protocol, unprepared: only for statements that take no
   * input and gain nothing from preparing (START TRANSACTION, COMMIT, ROLLBACK, SET of constants)
   * or cannot be prepared. Never build `sql` from input: there are no parameters on purpose.
   */
  async unprepared(sql: string, options?: StatementOptions): Promise<void> {
    await this.#run('admin', options?.timeoutMs, (timeout) => this.#raw.query({ sql, timeout }));
  }

  /** Returns the connection to the pool, or destroys it when it is broken. Idempotent. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    if (this.#broken) this.#destroyRaw();
    else this.#raw.release();
  }

  /** Closes the socket at once (the server rolls back an open transaction). Idempotent. */
  destroy(): void {
    this.#broken = true;
    if (this.#released) return;
    this.#released = true;
    this.#destroyRaw();
  }

  /** A statement passed its deadline: drop the socket and end the session on the server too. */
  #abandon(): void {
    const threadId = this.#raw.threadId;
    const wasOpen = !this.#released;
    this.destroy();
    if (wasOpen) void this.#ctx.killer?.kill(threadId);
  }

  #destroyRaw(): void {
    try {
      this.#raw.destroy();
      // destroy() only half-closes (FIN); a frozen peer never answers it, so drop the socket too.
      const core = this.#raw.connection as unknown as { stream?: { destroy?: () => void } };
      core.stream?.destroy?.();
    } catch (err) {
      this.#ctx.logger.debug({ err, pool: this.#ctx.pool }, 'mysql connection destroy failed');
    }
  }

  async #run<R>(
    phase: Phase,
    timeoutMs: number | undefined,
    op: (timeout: number) => Promise<[R, unknown]>,
  ): Promise<R> {
    if (this.#released) throw new Error(`mysql ${this.#ctx.pool}: connection already released`);
    if (this.#broken)
      throw new Error(`mysql ${this.#ctx.pool}: connection is broken (earlier timeout or connection error)`);
    const deadline = timeoutMs ?? this.#ctx.queryTimeoutMs;
    const started = performance.now();
    const observe = (outcome: 'ok' | 'error' | 'timeout'): void => {
      this.#ctx.metrics.statementDuration.observe(
        { pool: this.#ctx.pool, outcome },
        (performance.now() - started) / 1000,
      );
    };
    return new Promise<R>((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => {
        if (settled) return;
        settled = true;
        this.#ctx.metrics.timeouts.inc({ pool: this.#ctx.pool, phase });
        observe('timeout');
        this.#abandon();
        reject(new MysqlTimeoutError(this.#ctx.pool, phase, deadline));
      }, deadline);
      let pending: Promise<[R, unknown]>;
      try {
        pending = op(deadline);
      } catch (err) {
        // invalid parameters etc. are thrown synchronously: nothing was sent, the connection is fine
        settled = true;
        clearTimeout(timer);
        reject(err);
        return;
      }
      pending.then(
        ([result]) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          observe('ok');
          resolve(result);
        },
        (err: unknown) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          if ((err as { code?: unknown }).code === 'PROTOCOL_SEQUENCE_TIMEOUT') {
            this.#ctx.metrics.timeouts.inc({ pool: this.#ctx.pool, phase });
            observe('timeout');
            this.#abandon();
            reject(new MysqlTimeoutError(this.#ctx.pool, phase, deadline, { cause: err }));
            return;
          }
          observe('error');
          if (isConnectionLevelError(err)) this.#broken = true;
          reject(err);
        },
      );
    });
  }
}

/** Options of one {@link MysqlPool}. */
export interface MysqlPoolOptions {
  readonly name: MysqlPoolName;
  readonly url: string;
  readonly connectionLimit: number;
  readonly connectTimeoutMs: number;
  readonly queryTimeoutMs: number;
  /** Max wait for a free or new connection (default `connectTimeoutMs`). */
  readonly acquireTimeoutMs?: number;
  /** Prepared statements cached per connection (default 256, see {@link createMysqlPools}). */
  readonly maxPreparedStatements?: number;
  /** End a timed-out statement's server session with `KILL CONNECTION` (default true). */
  readonly killTimedOutSessions?: boolean;
  readonly logger: Logger;
  readonly registry: Registry;
}

/**
 * A mysql2 pool with deadlines everywhere: acquiring a connection, each statement, closing.
 * `select`/`execute` check a connection out for one auto-committed statement.
 */
export class MysqlPool implements MysqlExecutor {
  readonly name: MysqlPoolName;
  readonly queryTimeoutMs: number;
  readonly acquireTimeoutMs: number;
  readonly #raw: Pool;
  readonly #ctx: ConnectionContext;
  #closed = false;

  constructor(options: MysqlPoolOptions) {
    this.name = options.name;
    this.queryTimeoutMs = options.queryTimeoutMs;
    this.acquireTimeoutMs = options.acquireTimeoutMs ?? options.connectTimeoutMs;
    const logger = options.logger.child({ mysqlPool: options.name });
    const metrics = mysqlMetrics(options.registry);
    this.#ctx = {
      pool: options.name,
      queryTimeoutMs: options.queryTimeoutMs,
      metrics,
      logger,
      killer:
        options.killTimedOutSessions === false
          ? undefined
          : new ServerThreadKiller({
              pool: options.name,
              url: options.url,
              timeoutMs: options.connectTimeoutMs,
              kills: metrics.timeoutKills,
              logger,
            }),
    };
    this.#raw = mysql.createPool({
      uri: options.url,
      connectionLimit: options.connectionLimit,
      maxIdle: options.connectionLimit,
      idleTimeout: 60_000,
      queueLimit: 0,
      waitForConnections: true,
      connectTimeout: options.connectTimeoutMs,
      namedPlaceholders: false,
      multipleStatements: false,
      timezone: 'Z',
      dateStrings: ['DATE'],
      supportBigNumbers: true,
      bigNumberStrings: true,
      decimalNumbers: false,
      enableKeepAlive: true,
      keepAliveInitialDelay: 10_000,
      maxPreparedStatements: options.maxPreparedStatements ?? 256,
    });
    this.#raw.on('connection', (conn) => {
      // A later fatal socket error on an idle connection is emitted as 'error'; without a
      // listener it would crash the process. mysql2 already drops the connection from the pool.
      const core = conn as unknown as NodeJS.EventEmitter;
      core.on('error', (err: unknown) => logger.debug({ err }, 'mysql idle connection error'));
      // DATETIME columns hold UTC: make server-side NOW()/CURRENT_TIMESTAMP agree with `timezone: 'Z'`.
      // Queued before the caller's first statement on this connection, so it always runs first.
      const coreQuery = conn as unknown as {
        query: (opts: { sql: string; timeout: number }, cb: (err: unknown) => void) => void;
      };
      coreQuery.query({ sql: "SET time_zone = '+00:00'", timeout: options.queryTimeoutMs }, (err) => {
        if (err) logger.warn({ err }, 'mysql session init failed');
      });
    });
  }

  /**
   * Checks a connection out, waiting at most `timeoutMs` (default `acquireTimeoutMs`) for a free
   * slot or a new connection. A connection that arrives after the deadline is released at once.
   * @throws MysqlTimeoutError (phase `acquire`) or the connect error (e.g. ECONNREFUSED).
   */
  async acquire(timeoutMs: number = this.acquireTimeoutMs): Promise<MysqlConnection> {
    if (this.#closed) throw new Error(`mysql ${this.name}: pool is closed`);
    return new Promise<MysqlConnection>((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => {
        if (settled) return;
        settled = true;
        this.#ctx.metrics.timeouts.inc({ pool: this.name, phase: 'acquire' });
        reject(new MysqlTimeoutError(this.name, 'acquire', timeoutMs));
      }, timeoutMs);
      this.#raw.getConnection().then(
        (raw) => {
          if (settled) {
            raw.release();
            return;
          }
          settled = true;
          clearTimeout(timer);
          resolve(new MysqlConnection(raw, this.#ctx));
        },
        (err: unknown) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          reject(err);
        },
      );
    });
  }

  /** Runs `fn` with a checked-out connection and always releases (or destroys) it afterwards. */
  async withConnection<T>(fn: (conn: MysqlConnection) => Promise<T>): Promise<T> {
    const conn = await this.acquire();
    try {
      return await fn(conn);
    } finally {
      conn.release();
    }
  }

  /** One prepared, auto-committed statement returning rows. */
  select<T extends object = Record<string, unknown>>(
    sql: string,
    params?: readonly SqlParam[],
    options?: StatementOptions,
  ): Promise<T[]> {
    return this.withConnection((conn) => conn.select<T>(sql, params, options));
  }

  /** One prepared, auto-committed data-changing statement. */
  execute(sql: string, params?: readonly SqlParam[], options?: StatementOptions): Promise<WriteResult> {
    return this.withConnection((conn) => conn.execute(sql, params, options));
  }

  /**
   * Closes all connections (graceful COM_QUIT), giving up after `timeoutMs` (a frozen server never
   * answers). Idempotent; later `acquire` calls fail.
   */
  async close(timeoutMs = 2_000): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    });
    try {
      await Promise.race([
        Promise.all([
          this.#raw.end().catch((err: unknown) => this.#ctx.logger.debug({ err }, 'mysql pool end failed')),
          this.#ctx.killer?.drain(),
        ]),
        deadline,
      ]);
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Options of {@link createMysqlPools}. */
export interface MysqlPoolsOptions {
  /** `mysql://user:password@host:port/database` of the primary (writes, fallback reads). */
  readonly primaryUrl: string;
  /** Same for the read replica; without it every read goes to the primary. */
  readonly replicaUrl?: string | undefined;
  /** Max connections per pool. */
  readonly connectionLimit: number;
  /** TCP + handshake deadline for a new connection (also the default acquire deadline). */
  readonly connectTimeoutMs: number;
  /** Default deadline of every statement (PREPARE + EXECUTE + reading the result). */
  readonly queryTimeoutMs: number;
  /** Max wait for a pooled connection (default `connectTimeoutMs`). */
  readonly acquireTimeoutMs?: number;
  /** Prepared statements cached per connection (default 256). */
  readonly maxPreparedStatements?: number;
  /**
   * End the server session of a statement that passed its deadline (default true; see
   * {@link ServerThreadKiller}). Turn off only where `KILL` cannot reach the session the client
   * sees, e.g. behind a proxy that does not map its connection ids.
   */
  readonly killTimedOutSessions?: boolean;
  readonly logger?: Logger;
  /** Where the pool metrics go (default: a private registry, i.e. not exported). */
  readonly registry?: Registry;
}

/** The primary pool and, when configured, the replica pool. */
export interface MysqlPools {
  readonly primary: MysqlPool;
  readonly replica: MysqlPool | null;
  /** Closes both pools (bounded, see {@link MysqlPool.close}). */
  close(): Promise<void>;
}

/**
 * Creates the primary and (optional) replica pools with the settings every Hyperscale process
 * shares: positional placeholders only, prepared statements (`execute`) for everything that takes
 * input, `timezone: 'Z'` plus session `time_zone = '+00:00'` (DATETIME columns hold UTC),
 * `supportBigNumbers` + `bigNumberStrings` (BIGINT counters come back as exact strings, never
 * rounded doubles), DATE as plain strings, TCP keep-alive, and a deadline on every operation.
 *
 * `maxPreparedStatements` bounds mysql2's per-connection statement cache: the server caps prepared
 * statements globally (`max_prepared_stmt_count`, 16382 by default), and mysql2's default of
 * 16000 per connection would let a few connections exhaust it with dynamic SQL (IN-lists).
 */
export function createMysqlPools(options: MysqlPoolsOptions): MysqlPools {
  for (const key of ['connectionLimit', 'connectTimeoutMs', 'queryTimeoutMs'] as const) {
    if (!(Number.isFinite(options[key]) && options[key] > 0))
      throw new RangeError(`${key} must be a positive number`);
  }
  const logger = options.logger ?? pino({ enabled: false });
  const registry = options.registry ?? new Registry();
  const common = {
    connectionLimit: options.connectionLimit,
    connectTimeoutMs: options.connectTimeoutMs,
    queryTimeoutMs: options.queryTimeoutMs,
    acquireTimeoutMs: options.acquireTimeoutMs,
    maxPreparedStatements: options.maxPreparedStatements,
    killTimedOutSessions: options.killTimedOutSessions,
    logger,
    registry,
  };
  const primary = new MysqlPool({ ...common, name: 'primary', url: options.primaryUrl });
  const replica = options.replicaUrl
    ? new MysqlPool({ ...common, name: 'replica', url: options.replicaUrl })
    : null;
  return {
    primary,
    replica,
    async close() {
      await Promise.all([primary.close(), replica?.close()]);
    },
  };
}
