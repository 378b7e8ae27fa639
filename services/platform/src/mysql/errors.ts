/** Which side of the primary/replica pair an error or a read concerns. */
export type MysqlPoolName = 'primary' | 'replica';

/**
 * A MySQL operation did not finish within its deadline. `phase` says where it was stuck:
 * `acquire` (no pooled connection became free, or connecting took too long), `query` (the
 * statement, including its implicit PREPARE, got no complete answer), `admin` (a fixed,
 * unprepared statement such as COMMIT). The connection involved has been destroyed, never
 * returned to the pool, so a frozen server cannot poison later queries, and its server session
 * is killed (`KILL CONNECTION`), which aborts the statement and rolls back whatever the session
 * had open. A statement that completed just before the kill stays done: the outcome of a timed-out
 * write is unknown, not "not written".
 */
export class MysqlTimeoutError extends Error {
  override readonly name = 'MysqlTimeoutError';
  readonly code = 'HS_MYSQL_TIMEOUT';

  constructor(
    readonly pool: MysqlPoolName,
    readonly phase: 'acquire' | 'query' | 'admin',
    readonly timeoutMs: number,
    options?: { cause?: unknown },
  ) {
    super(`mysql ${pool}: ${phase} timed out after ${timeoutMs} ms`, options);
  }
}

/**
 * COMMIT was sent but no answer came back (connection lost or timed out): the transaction may or
 * may not be durable. Callers must not assume either outcome; the safe reaction is to retry with
 * an idempotent transaction (e.g. the writer re-applies a batch keyed by its stored offsets).
 */
export class MysqlCommitOutcomeUnknownError extends Error {
  override readonly name = 'MysqlCommitOutcomeUnknownError';
  readonly code = 'HS_MYSQL_COMMIT_UNKNOWN';

  constructor(options: { cause: unknown }) {
    super('mysql primary: COMMIT outcome unknown (connection lost or timed out)', options);
  }
}

/** A migration run could not start or failed; `appliedVersions` lists what was applied before it stopped. */
export class MysqlMigrationError extends Error {
  override readonly name = 'MysqlMigrationError';
  readonly code = 'HS_MYSQL_MIGRATION';

  constructor(
    message: string,
    readonly appliedVersions: readonly number[],
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** MariaDB/MySQL server error numbers this package reacts to. */
export const MysqlErrno = {
  lockWaitTimeout: 1205,
  deadlock: 1213,
  noSuchTable: 1146,
  badDb: 1049,
  serverShutdown: 1053,
  tooManyConnections: 1040,
  queryInterrupted: 1317,
  /** ER_NO_SUCH_THREAD: KILL of a thread that has already ended. */
  noSuchThread: 1094,
} as const;

/** Reads `errno` from a mysql2 error without trusting its shape. */
export function mysqlErrno(err: unknown): number | undefined {
  if (typeof err === 'object' && err !== null && 'errno' in err) {
    const errno = (err as { errno: unknown }).errno;
    return typeof errno === 'number' ? errno : undefined;
  }
  return undefined;
}

/**
 * True for errors after which re-running the WHOLE transaction is safe and likely to succeed:
 * InnoDB chose this transaction as a deadlock victim (1213, already rolled back) or a row lock
 * wait timed out (1205). Anything else (constraint violations, timeouts, lost connections) is
 * not retried automatically.
 */
export function isRetryableTransactionError(err: unknown): boolean {
  const errno = mysqlErrno(err);
  return errno === MysqlErrno.deadlock || errno === MysqlErrno.lockWaitTimeout;
}

const CONNECTION_ERROR_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
]);

/**
 * True when the error says "the server (or the path to it) is not answering" rather than "the
 * statement is wrong": our own timeouts, socket errors, mysql2 fatal errors, a closed pool, server
 * shutdown or connection exhaustion. Used to fail over a read to the primary and to mark the
 * replica down before the next health probe notices.
 */
export function isConnectionLevelError(err: unknown): boolean {
  if (err instanceof MysqlTimeoutError) return true;
  if (typeof err !== 'object' || err === null) return false;
  const { code, fatal } = err as { code?: unknown; fatal?: unknown };
  if (typeof code === 'string' && CONNECTION_ERROR_CODES.has(code)) return true;
  if (fatal === true) return true;
  const errno = mysqlErrno(err);
  if (errno === MysqlErrno.serverShutdown || errno === MysqlErrno.tooManyConnections) return true;
  const message = (err as { message?: unknown }).message;
  return typeof message === 'string' && /Pool is closed|closed state/.test(message);
}
