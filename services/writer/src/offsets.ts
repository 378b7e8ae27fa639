/**
 * Offset arithmetic of the writer. Kafka offsets are int64 carried as decimal strings (kafkajs, and
 * mysql2 returns BIGINT as strings here), so they are compared as BigInt, never as numbers.
 */

/** One decoded event and the Kafka partition and offset it came from. */
export interface OffsetEvent<E> {
  readonly partition: number;
  readonly offset: string;
  readonly event: E;
}

/**
 * Splits a partition batch (offset order) at the partition's stored `next_offset`: events below it
 * were applied by an earlier transaction (a re-delivery after a crash between the MySQL and the
 * Kafka commit, a zombie member, a rebalance) and must not be applied again. `stored` null means
 * nothing was ever stored for the partition: everything is fresh.
 */
export function splitByStoredOffset<T extends { readonly offset: string }>(
  items: readonly T[],
  stored: string | null,
): { fresh: T[]; duplicates: number } {
  if (stored === null) return { fresh: [...items], duplicates: 0 };
  const next = BigInt(stored);
  const fresh = items.filter((item) => BigInt(item.offset) >= next);
  return { fresh, duplicates: items.length - fresh.length };
}
