import calculateSlot from 'cluster-key-slot';

/** Redis Cluster's slot count: `slot = crc16(name) mod 16384`. */
export const SLOT_COUNT = 16_384;

/** Prefix of every counter key; SCAN `ctr:*` finds them all on a shard. */
export const KEY_PATTERN = 'ctr:*';

/**
 * The slot of a counter name: crc16(name) mod 16384, Redis Cluster's function over the WHOLE
 * name (names never contain braces, COUNTER_NAME_PATTERN forbids them, so no hash tag applies).
 */
export function slotOf(name: string): number {
  return calculateSlot(name);
}

/** The Redis keys of one counter, all tagged `{<slot>}` (one slot, findable by SCAN per slot). */
export interface CounterKeys {
  /**
   * Hash `{v: value, g: generation, m: '1' while it only holds deltas of a migration}`. Its
   * existence means "warm"; absent means cold (never read, invalidated, lost in a failover).
   */
  value: string;
  /**
   * Sorted set of event ids applied to `value` but not yet acknowledged by Kafka, scored by their
   * deadline (ms). An entry past its deadline means a pod died between Redis and the ack: the
   * value may hold a delta that never became durable, so the counter is treated as cold.
   */
  pending: string;
}

/** `ctr:{<slot>}:<name>` and `ctr:{<slot>}:<name>:p`. */
export function counterKeys(name: string, slot = slotOf(name)): CounterKeys {
  const value = `ctr:{${slot}}:${name}`;
  return { value, pending: `${value}:p` };
}

/** The hash tag of a slot, for idempotency records kept beside the data (`idem:{<slot>}:<id>`). */
export function slotTag(slot: number): string {
  return String(slot);
}
