import {
  HttpProblem,
  KafkaError,
  MysqlCommitOutcomeUnknownError,
  RedisError,
  isConnectionLevelError,
  serviceUnavailable,
  type ErrorMapper,
} from '@hyperscale/platform';

/** A Redis shard failed (error, timeout, open breaker): the caller takes the MySQL path. Internal. */
export class RedisPathError extends Error {
  constructor(
    readonly shard: string,
    cause: unknown,
  ) {
    super(`redis shard ${shard} unavailable`, { cause });
    this.name = 'RedisPathError';
  }
}

/** A cold counter could not be warmed (writer barrier unavailable: Kafka unreachable). Internal. */
export class WarmUnavailableError extends Error {
  constructor(readonly counter: string) {
    super(`counter ${counter} cannot be warmed now`);
    this.name = 'WarmUnavailableError';
  }
}

/** True for MySQL failures that mean "the database is not answering", not "the SQL is wrong". */
export function isMysqlUnavailable(err: unknown): boolean {
  return isConnectionLevelError(err) || err instanceof MysqlCommitOutcomeUnknownError;
}

/** Dependency failures that escaped the store's fallbacks become 503 + Retry-After, never a 500. */
export const mapCounterError: ErrorMapper = (error) => {
  if (error instanceof HttpProblem) return error;
  if (isMysqlUnavailable(error))
    return serviceUnavailable('The database is unavailable; retry later', 1, error);
  if (error instanceof RedisError || error instanceof RedisPathError)
    return serviceUnavailable('The cache is unavailable; retry later', 1, error);
  if (error instanceof KafkaError)
    return serviceUnavailable('The event log is unavailable; retry later', 1, error);
  return undefined;
};
