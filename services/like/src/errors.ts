import {
  HttpProblem,
  KafkaError,
  MysqlCommitOutcomeUnknownError,
  RedisError,
  isConnectionLevelError,
  serviceUnavailable,
  type ErrorMapper,
} from '@hyperscale/platform';

/**
 * A Redis shard failed (error, timeout or open breaker) during an operation: the caller takes
 * the MySQL path. Internal to the store, never rendered.
 */
export class RedisPathError extends Error {
  constructor(
    readonly shard: string,
    cause: unknown,
  ) {
    super(`redis shard ${shard} unavailable`, { cause });
    this.name = 'RedisPathError';
  }
}

/** A cold post could not be warmed because the writer barrier could not be established. */
export class WarmUnavailableError extends Error {
  constructor(readonly postId: string) {
    super(`post ${postId} cannot be warmed now (Kafka unreachable or warm kept aborting)`);
    this.name = 'WarmUnavailableError';
  }
}

/** True for MySQL failures that mean "the database is not answering", not "the SQL is wrong". */
export function isMysqlUnavailable(err: unknown): boolean {
  return isConnectionLevelError(err) || err instanceof MysqlCommitOutcomeUnknownError;
}

/**
 * Error mapper of the like app: dependency failures that escaped the store's fallbacks become a
 * 503 problem with Retry-After (never a 500 that would invite an immediate retry storm).
 */
export const mapLikeError: ErrorMapper = (error) => {
  if (error instanceof HttpProblem) return error;
  if (isMysqlUnavailable(error))
    return serviceUnavailable('The database is unavailable; retry later', 1, error);
  if (error instanceof RedisError || error instanceof RedisPathError)
    return serviceUnavailable('The cache is unavailable; retry later', 1, error);
  if (error instanceof KafkaError)
    return serviceUnavailable('The event log is unavailable; retry later', 1, error);
  return undefined;
};
