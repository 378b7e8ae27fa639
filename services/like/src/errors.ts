import { serviceUnavailable, type ErrorMapper } from '@hyperscale/platform';

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

/**
 * Error mapper of the like app. Dependency failures (Redis, Kafka, MySQL outages and timeouts) that
 * escape the store's fallbacks are mapped by the platform's `mapDependencyError` (503 with
 * Retry-After); only the store's own {@link RedisPathError} needs naming here.
 */
export const mapLikeError: ErrorMapper = (error) =>
  error instanceof RedisPathError
    ? serviceUnavailable('The cache is unavailable; retry later', 1, error)
    : undefined;
