import type { PlannedRequest } from './load.js';

/**
 * A scenario: which service it loads, how to build its next request, and what its acknowledged
 * requests must have written (verified after the writer drained).
 */
export interface Scenario {
  name: string;
  service: 'like' | 'counter';
  verify: 'likes' | 'counters' | 'uniques' | 'none';
  next: () => PlannedRequest;
  /** Also measured against the service's app floor (its HTTP stack with constant answers). */
  appFloor?: boolean;
  /**
   * Also measured against the counter's path floor (a bare route doing only the Redis INCRBY and
   * the awaited Kafka event, counter-path-floor.ts): the most any design could reach here.
   */
  pathFloor?: boolean;
  /** Requests sent once, in order, before the warm-up (e.g. reads that bring every name into Redis). */
  prepare?: () => PlannedRequest[];
}

const SPREAD_POSTS = 1_000;

/**
 * The like scenarios of the bench. Every write is a distinct (user, post) pair, so each 2xx answer
 * must add exactly one like in MySQL — which is what the verification counts.
 */
export function likeScenarios(runId: string, token: (userId: string) => string): Scenario[] {
  const spreadPost = (index: number) => `${runId}-p${index % SPREAD_POSTS}`;
  const auth = (userId: string) => ({ authorization: `Bearer ${token(userId)}` });
  let spread = 0;
  let hot = 0;
  let read = 0;
  let batch = 0;
  const readerToken = auth(`${runId}-reader`);
  return [
    {
      name: 'like-write-spread',
      service: 'like',
      verify: 'likes',
      next: () => {
        const sequence = spread++;
        const postId = spreadPost(sequence);
        const userId = `${runId}-s${Math.floor(sequence / SPREAD_POSTS)}`;
        return {
          method: 'PUT',
          path: `/v1/posts/${postId}/like`,
          headers: auth(userId),
          key: `${userId}|${postId}`,
        };
      },
    },
    {
      name: 'like-write-hot',
      service: 'like',
      verify: 'likes',
      next: () => {
        const postId = `${runId}-hot`;
        const userId = `${runId}-h${hot++}`;
        return {
          method: 'PUT',
          path: `/v1/posts/${postId}/like`,
          headers: auth(userId),
          key: `${userId}|${postId}`,
        };
      },
    },
    {
      name: 'like-read',
      service: 'like',
      verify: 'none',
      next: () => ({ method: 'GET', path: `/v1/posts/${spreadPost(read++)}/likes`, headers: readerToken }),
    },
    {
      name: 'like-batch-read',
      service: 'like',
      verify: 'none',
      next: () => {
        const start = (batch++ * 100) % SPREAD_POSTS;
        const postIds = Array.from({ length: 100 }, (_, offset) => spreadPost(start + offset));
        return {
          method: 'POST',
          path: '/v1/likes:batchGet',
          headers: readerToken,
          body: JSON.stringify({ postIds }),
        };
      },
    },
  ];
}
