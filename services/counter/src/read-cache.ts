import type { ReadReply } from './scripts.js';

/**
 * Whether a counter read may be kept by the pod's read cache (`TrackedCache`, see the README's
 * "Pod-local read cache"): warm, whole (no migration partial), and no increment pending. A pending
 * entry that expires changes no key, so no invalidation would ever drop a value holding a delta
 * that never became durable.
 */
export function cacheable(reply: ReadReply): reply is Extract<ReadReply, { cold: false }> {
  return !reply.cold && !reply.partial && !reply.lost && reply.idle;
}

/** The value to keep for a read reply: its value when {@link cacheable}, else nothing. */
export function cachedValue(reply: ReadReply): number | undefined {
  return cacheable(reply) ? reply.value : undefined;
}

/**
 * The cache keys (counter hash keys) a changed Redis key concerns: the hash itself, or the hash
 * whose pending set (`<hash>:p`) it is. Both, because a counter name may itself end in `:p`.
 */
export function counterCacheKeys(redisKey: string): readonly string[] {
  return redisKey.endsWith(':p') ? [redisKey, redisKey.slice(0, -2)] : [redisKey];
}
