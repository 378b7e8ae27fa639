import calculateSlot from 'cluster-key-slot';

/** Redis Cluster's slot count: `slot = crc16(key) mod 16384`. */
export const SLOT_COUNT = 16_384;

/** The Redis keys of one post. All carry the post id as hash tag, so they live in one slot. */
export interface PostKeys {
  /** Set of the user ids that like the post. Absent when nobody does (or while cold). */
  users: string;
  /** Like count. Its existence means "warm": every other key is only trusted while it exists. */
  count: string;
  /** Generation token written by the warm that built the current keys (see like-store.ts). */
  gen: string;
  /**
   * Sorted set of the event ids applied to Redis but not yet acknowledged by Kafka, scored by
   * their deadline (ms). An entry past its deadline means a pod died between the Lua change and
   * the ack: the keys may hold a change that never became durable, so the post is treated as cold.
   */
  pending: string;
}

/** Prefix of every key this service writes; SCAN `like:*` finds them all on a shard. */
export const KEY_PATTERN = 'like:*';

/**
 * The keys of `postId`: `like:{<postId>}:users|count|gen`. Post ids are validated against
 * ID_PATTERN (no braces), so the hash tag is exactly the id.
 */
export function postKeys(postId: string): PostKeys {
  const tag = `like:{${postId}}`;
  return { users: `${tag}:users`, count: `${tag}:count`, gen: `${tag}:gen`, pending: `${tag}:pending` };
}

/**
 * Where the post's newest acknowledged event sits in Kafka (`<partition>:<offset>`), written after
 * each ack. A fallback write reads it to supersede the events Kafka holds and the writer has not
 * applied yet. Not a cache of MySQL, so outside `like:*`: invalidations never delete it. Same hash
 * tag, same slot.
 */
export function ackedPositionKey(postId: string): string {
  return `likeack:{${postId}}`;
}

/** The slot of a post: crc16 of its hash tag (the post id) mod 16384, as ioredis/Redis Cluster compute it. */
export function slotOf(postId: string): number {
  return calculateSlot(postKeys(postId).count);
}

/**
 * Which of `shardCount` shards owns `slot`: the slot space is cut into equal contiguous ranges in
 * the configured order (2 shards: 0–8191 → 0, 8192–16383 → 1), like a Redis Cluster slot table.
 * The order of REDIS_MASTER_NAMES therefore matters and must be the same on every pod.
 * @throws RangeError for a shard count below 1 or a slot outside 0..16383.
 */
export function shardIndexForSlot(slot: number, shardCount: number): number {
  if (!Number.isInteger(shardCount) || shardCount < 1) throw new RangeError('shardCount must be ≥ 1');
  if (!Number.isInteger(slot) || slot < 0 || slot >= SLOT_COUNT) throw new RangeError(`bad slot ${slot}`);
  return Math.floor((slot * shardCount) / SLOT_COUNT);
}

/** Shard index of a post (see {@link shardIndexForSlot}). */
export function shardIndexOf(postId: string, shardCount: number): number {
  return shardIndexForSlot(slotOf(postId), shardCount);
}
