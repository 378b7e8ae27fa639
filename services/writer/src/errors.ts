import { InvalidEventError, isConnectionLevelError, mysqlErrno } from '@hyperscale/platform';

/**
 * Thrown by a topic handler when what it found contradicts what its locks should guarantee (e.g.
 * an insert affected fewer rows than planned because a concurrent writer got there first). The
 * pipeline rolls back and re-runs the whole transaction, which then sees the other writer's rows.
 */
export class ApplyConflictError extends Error {
  override readonly name = 'ApplyConflictError';
}

/** Server errors after which re-running the whole transaction is the fix. */
const RETRYABLE_ERRNOS = new Set([
  1213, // deadlock: this transaction was rolled back
  1205, // lock wait timeout
  1062, // duplicate key: a concurrent writer inserted a row we planned to insert
]);

/**
 * Server errors caused by the data of a message (a value the column cannot hold): retrying cannot
 * help, so they reach the consumer's poison isolation and the message is dead-lettered.
 */
const DATA_ERRNOS = new Set([
  1048, // column cannot be null
  1264, // out of range value
  1292, // incorrect datetime/number value
  1366, // incorrect string value
  1406, // data too long
  1690, // BIGINT value out of range
]);

/** How the pipeline reacts to an error raised while applying a batch. */
export type FailureKind = 'retry' | 'poison' | 'transient';

/**
 * Classifies an apply failure:
 * - `retry`: deadlock, lock wait timeout, duplicate key or {@link ApplyConflictError} — re-run the
 *   transaction at once (a few times);
 * - `poison`: the message itself is bad ({@link InvalidEventError}, a data error) — let the consumer
 *   isolate and dead-letter it;
 * - `transient`: everything else — MySQL down or frozen, timeouts, lost connections, a missing
 *   table, a read-only server, and unexpected bugs. The partition is paused and re-delivered later,
 *   never dead-lettered: a valid like must not end up in a DLQ because the database misbehaved.
 */
export function classifyFailure(err: unknown): FailureKind {
  if (err instanceof ApplyConflictError) return 'retry';
  if (err instanceof InvalidEventError) return 'poison';
  if (isConnectionLevelError(err)) return 'transient';
  const errno = mysqlErrno(err);
  if (errno !== undefined && RETRYABLE_ERRNOS.has(errno)) return 'retry';
  if (errno !== undefined && DATA_ERRNOS.has(errno)) return 'poison';
  return 'transient';
}
