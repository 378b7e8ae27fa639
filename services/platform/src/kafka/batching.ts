/**
 * Pure helpers for batching and retrying: chunking a fetched batch, splitting a failed chunk for
 * poison isolation, and exponential backoff.
 */

/** Splits `items` into consecutive chunks of at most `size` items, order kept. `size` ≥ 1. */
export function chunk<T>(items: readonly T[], size: number): T[][] {
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`chunk size must be ≥ 1, got ${size}`);
  const chunks: T[][] = [];
  for (let i = 0; i < items.length; i += size) chunks.push(items.slice(i, i + size));
  return chunks;
}

/**
 * Splits a failed chunk in two halves (the left one gets the extra item), order kept. Bisection
 * finds k poison messages among n in O(k·log n) handler calls instead of n, and every message
 * that is not poison is still handled, in order, in a sub-chunk.
 */
export function halves<T>(items: readonly T[]): [T[], T[]] {
  const mid = Math.ceil(items.length / 2);
  return [items.slice(0, mid), items.slice(mid)];
}

/** Retry policy of a handler: total attempts and the exponential backoff between them. */
export interface RetryPolicy {
  /** Attempts in total, first one included (≥ 1). */
  maxAttempts: number;
  /** Delay after the first failure. */
  initialDelayMs: number;
  /** Cap on any delay. */
  maxDelayMs: number;
}

/** Default handler retry policy: 5 attempts, 100 ms doubling up to 5 s (≈ 1.5 s of waiting in all). */
export const DEFAULT_RETRY_POLICY: Readonly<RetryPolicy> = {
  maxAttempts: 5,
  initialDelayMs: 100,
  maxDelayMs: 5000,
};

/**
 * The delay before retry number `failedAttempts` + 1, after `failedAttempts` failures (≥ 1):
 * `initialDelayMs · 2^(failedAttempts-1)` capped at `maxDelayMs`, with "equal jitter" (a uniform
 * value in [d/2, d]) so consumers retrying the same outage do not stampede in lock-step, while
 * the wait never drops below half the nominal delay. `random` is injectable for tests.
 */
export function backoffDelay(
  failedAttempts: number,
  policy: Pick<RetryPolicy, 'initialDelayMs' | 'maxDelayMs'>,
  random: () => number = Math.random,
): number {
  const exponent = Math.max(0, failedAttempts - 1);
  const nominal = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** Math.min(exponent, 30));
  const half = nominal / 2;
  return Math.round(half + random() * half);
}

/** Validates a partial policy over the defaults; throws RangeError on nonsense values. */
export function resolveRetryPolicy(partial: Partial<RetryPolicy> | undefined): RetryPolicy {
  const policy = { ...DEFAULT_RETRY_POLICY, ...partial };
  if (!Number.isInteger(policy.maxAttempts) || policy.maxAttempts < 1) {
    throw new RangeError(`retry.maxAttempts must be an integer ≥ 1, got ${policy.maxAttempts}`);
  }
  if (policy.initialDelayMs < 0 || policy.maxDelayMs < policy.initialDelayMs) {
    throw new RangeError('retry delays must satisfy 0 ≤ initialDelayMs ≤ maxDelayMs');
  }
  return policy;
}
