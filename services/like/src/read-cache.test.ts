import { describe, expect, it } from 'vitest';
import { MAX_MEMBERS, cachedPost, postCacheKeys, stateFrom } from './read-cache.js';

const warm = { cold: false as const, count: 3, liked: true, idle: true };

describe('like read cache rules', () => {
  it('keeps nothing of a cold post or one with a change awaiting its ack', () => {
    expect(cachedPost({ cold: true }, 'u', undefined)).toBeUndefined();
    expect(cachedPost({ ...warm, idle: false }, 'u', undefined)).toBeUndefined();
  });

  it('builds up the memberships read, and answers only for users it holds', () => {
    const first = cachedPost(warm, 'alice', undefined);
    const second = cachedPost({ ...warm, liked: false }, 'bob', first);
    expect(second?.count).toBe(3);
    expect(stateFrom(second!, 'alice')).toEqual({ count: 3, liked: true });
    expect(stateFrom(second!, 'bob')).toEqual({ count: 3, liked: false });
    expect(stateFrom(second!, 'carol')).toBeUndefined();
    expect(stateFrom(second!, undefined)).toEqual({ count: 3, liked: false });
    // An anonymous read keeps the count and the memberships already there.
    expect(cachedPost(warm, '', second)?.members.size).toBe(2);
  });

  it('keeps at most MAX_MEMBERS memberships per post, updating those it has', () => {
    let entry = cachedPost(warm, 'u0', undefined);
    for (let i = 1; i <= MAX_MEMBERS + 10; i += 1) entry = cachedPost(warm, `u${i}`, entry);
    expect(entry?.members.size).toBe(MAX_MEMBERS);
    entry = cachedPost({ ...warm, liked: false }, 'u0', entry);
    expect(stateFrom(entry!, 'u0')).toEqual({ count: 3, liked: false });
  });

  it('maps every key of a post to the post', () => {
    for (const suffix of ['users', 'count', 'gen', 'pending'])
      expect(postCacheKeys(`like:{p-1}:${suffix}`)).toEqual(['p-1']);
    expect(postCacheKeys('ctr:{1}:x')).toEqual([]);
  });
});
