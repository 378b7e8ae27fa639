import type { ReadReply } from './scripts.js';

/** What the pod's read cache keeps of a post: its count and the memberships read so far. */
export interface CachedPost {
  count: number;
  /** userId → liked, for the users whose state was read (at most MAX_MEMBERS). */
  members: Map<string, boolean>;
}

/** Memberships kept per post: a post read by many users keeps its count, not every reader. */
export const MAX_MEMBERS = 256;

/**
 * What to keep for a `likeRead` reply (for `userId`, '' when none), given the post's valid entry:
 * nothing for a cold post or one with a change awaiting its Kafka ack (an entry that expires
 * changes no key, so no invalidation would drop a change that never became durable), else the
 * count and the memberships read so far plus this one.
 */
export function cachedPost(
  reply: ReadReply,
  userId: string,
  previous: CachedPost | undefined,
): CachedPost | undefined {
  if (reply.cold || !reply.idle) return undefined;
  const members = previous?.members ?? new Map<string, boolean>();
  if (userId !== '' && (members.has(userId) || members.size < MAX_MEMBERS)) members.set(userId, reply.liked);
  return { count: reply.count, members };
}

/** The state of a post for `userId` from its entry, or undefined when the entry lacks that user. */
export function stateFrom(
  entry: CachedPost,
  userId: string | undefined,
): { count: number; liked: boolean } | undefined {
  if (userId === undefined || userId === '') return { count: entry.count, liked: false };
  const liked = entry.members.get(userId);
  return liked === undefined ? undefined : { count: entry.count, liked };
}

const POST_KEY = /^like:\{(.+)\}:(?:users|count|gen|pending)$/;

/** The post a changed Redis key belongs to (`like:{<postId>}:users|count|gen|pending`). */
export function postCacheKeys(redisKey: string): readonly string[] {
  const postId = POST_KEY.exec(redisKey)?.[1];
  return postId === undefined ? [] : [postId];
}
