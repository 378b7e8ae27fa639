import { serviceUnavailable, type ErrorMapper } from '@hyperscale/platform';

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

/**
 * Error mapper of the counter app. Dependency failures (Redis, Kafka, MySQL outages and timeouts) that
 * escape the store's fallbacks are mapped by the platform's `mapDependencyError` (503 with
 * Retry-After); only the store's own {@link RedisPathError} needs naming here.
 */
export const mapCounterError: ErrorMapper = (error) =>
  error instanceof RedisPathError
    ? serviceUnavailable('The cache is unavailable; retry later', 1, error)
    : undefined;
