import { RedisReplyError, serviceUnavailable, type ErrorMapper } from '@hyperscale/platform';

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

/**
 * The `COLD` reply of a script (a unique-user day set not in Redis): warm it first and retry. A
 * normal answer of a healthy shard, so never a dependency failure.
 */
export function isColdReply(err: unknown): boolean {
  return err instanceof RedisReplyError && err.code === 'COLD';
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
