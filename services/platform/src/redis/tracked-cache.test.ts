import { describe, expect, it } from 'vitest';
import { TrackedCache, type InvalidationSource } from './tracked-cache.js';
import type { InvalidationListener } from './tracked-reader.js';

/** A reader whose liveness, epoch and invalidations the test drives. */
class FakeReader implements InvalidationSource {
  epoch = 1;
  isLive = true;
  private listener: InvalidationListener | undefined;
  live(): boolean {
    return this.isLive;
  }
  onInvalidate(listener: InvalidationListener): () => void {
    this.listener = listener;
    return () => (this.listener = undefined);
  }
  invalidate(keys: readonly string[] | null): void {
    this.listener?.(keys);
  }
}

/** A reply as a script might give it: a value, and whether it may be cached. */
interface Reply {
  value: number;
  cacheable: boolean;
}
const warm = (value: number, cacheable = true): Reply => ({ value, cacheable });
const keep = (reply: Reply) => (reply.cacheable ? reply.value : undefined);

/** A read whose reply the test releases, to put invalidations between send and reply. */
function deferredRead(replies: Reply[]) {
  let release: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => (release = resolve));
  return { read: () => gate.then(() => replies), release };
}

function cacheOf(maxEntries = 10, cacheKeysOf?: (key: string) => readonly string[]) {
  const reader = new FakeReader();
  const cache = new TrackedCache<number>(reader, {
    maxEntries,
    ...(cacheKeysOf === undefined ? {} : { cacheKeysOf }),
  });
  return { reader, cache };
}

describe('TrackedCache', () => {
  it('keeps what keep() returns, and serves it while the reader is live', async () => {
    const { reader, cache } = cacheOf();
    await cache.fetch(['a', 'b'], () => Promise.resolve([warm(1), warm(2, false)]), keep);
    expect([cache.get('a'), cache.get('b')]).toEqual([1, undefined]);
    reader.isLive = false;
    expect(cache.get('a')).toBeUndefined();
    reader.isLive = true;
    expect(cache.get('a')).toBe(1);
  });

  it('drops an entry when a later reply may not be cached', async () => {
    const { cache } = cacheOf();
    await cache.fetch(['a'], () => Promise.resolve([warm(1)]), keep);
    await cache.fetch(['a'], () => Promise.resolve([warm(2, false)]), keep);
    expect(cache.get('a')).toBeUndefined();
  });

  it('passes the valid entry to keep() so a value can be built up over several reads', async () => {
    const { reader, cache } = cacheOf();
    const sum = (reply: Reply, previous: number | undefined) => (previous ?? 0) + reply.value;
    await cache.fetch(['a'], () => Promise.resolve([warm(1)]), sum);
    await cache.fetch(['a'], () => Promise.resolve([warm(2)]), sum);
    expect(cache.get('a')).toBe(3);
    reader.epoch += 1; // an entry of an older epoch is not passed on
    await cache.fetch(['a'], () => Promise.resolve([warm(5)]), sum);
    expect(cache.get('a')).toBe(5);
  });

  it('drops the cache keys an invalidated Redis key concerns', async () => {
    const { reader, cache } = cacheOf(10, (key) => [key, key.replace(/:p$/, '')]);
    await cache.fetch(['h:a', 'h:b', 'h:b:p'], () => Promise.resolve([warm(1), warm(2), warm(3)]), keep);
    reader.invalidate(['h:a']);
    reader.invalidate(['h:b:p']);
    expect([cache.get('h:a'), cache.get('h:b'), cache.get('h:b:p')]).toEqual([
      undefined,
      undefined,
      undefined,
    ]);
  });

  it('does not keep a reply whose key was invalidated while the read was in flight', async () => {
    const { reader, cache } = cacheOf();
    const slow = deferredRead([warm(1), warm(2)]);
    const fetching = cache.fetch(['a', 'b'], slow.read, keep);
    reader.invalidate(['a']);
    slow.release();
    await fetching;
    expect(cache.get('a')).toBeUndefined();
    expect(cache.get('b')).toBe(2);
  });

  it('does not keep a reply after forget() of its key while in flight (the owner’s own write)', async () => {
    const { cache } = cacheOf();
    const slow = deferredRead([warm(1)]);
    const fetching = cache.fetch(['a'], slow.read, keep);
    cache.forget('a');
    slow.release();
    await fetching;
    expect(cache.get('a')).toBeUndefined();
  });

  it('keeps the reply of a read sent after an invalidation even while an older read is in flight', async () => {
    const { reader, cache } = cacheOf();
    const older = deferredRead([warm(1)]);
    const first = cache.fetch(['a'], older.read, keep);
    reader.invalidate(['a']);
    await cache.fetch(['a'], () => Promise.resolve([warm(2)]), keep);
    older.release();
    await first;
    expect(cache.get('a')).toBe(2);
  });

  it('keeps nothing read in an older epoch, and serves nothing cached in one', async () => {
    const { reader, cache } = cacheOf();
    await cache.fetch(['a'], () => Promise.resolve([warm(1)]), keep);
    const slow = deferredRead([warm(2)]);
    const fetching = cache.fetch(['b'], slow.read, keep);
    reader.epoch += 1;
    slow.release();
    await fetching;
    expect(cache.get('a')).toBeUndefined();
    expect(cache.get('b')).toBeUndefined();
  });

  it('clear() (and a null invalidation) drops everything, including reads in flight', async () => {
    const { reader, cache } = cacheOf();
    await cache.fetch(['a'], () => Promise.resolve([warm(1)]), keep);
    const slow = deferredRead([warm(2)]);
    const fetching = cache.fetch(['b'], slow.read, keep);
    reader.invalidate(null);
    slow.release();
    await fetching;
    expect(cache.size).toBe(0);
  });

  it('holds at most maxEntries, dropping the oldest', async () => {
    const { cache } = cacheOf(2);
    await cache.fetch(['a', 'b', 'c'], () => Promise.resolve([warm(1), warm(2), warm(3)]), keep);
    expect(cache.size).toBe(2);
    expect([cache.get('a'), cache.get('b'), cache.get('c')]).toEqual([undefined, 2, 3]);
  });

  it('returns the replies unchanged, and keeps nothing when the read fails', async () => {
    const { cache } = cacheOf();
    const replies = [warm(1), warm(2, false)];
    await expect(cache.fetch(['a', 'b'], () => Promise.resolve(replies), keep)).resolves.toBe(replies);
    await expect(cache.fetch(['c'], () => Promise.reject(new Error('down')), keep)).rejects.toThrow('down');
    expect(cache.get('c')).toBeUndefined();
  });

  it('refuses a size below one', () => {
    expect(() => new TrackedCache(new FakeReader(), { maxEntries: 0 })).toThrow(RangeError);
  });
});
