import { describe, expect, it } from 'vitest';
import type { InvalidationListener } from '@hyperscale/platform';
import { ShardReadCache, type InvalidationSource } from './read-cache.js';
import type { ReadReply } from './scripts.js';

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

const warm = (value: number, extra: Partial<Extract<ReadReply, { cold: false }>> = {}): ReadReply => ({
  cold: false,
  value,
  partial: false,
  lost: false,
  idle: true,
  ...extra,
});

/** A read whose reply the test releases, to put invalidations between send and reply. */
function deferredRead(replies: ReadReply[]) {
  let release: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => (release = resolve));
  return { read: () => gate.then(() => replies), release };
}

describe('ShardReadCache', () => {
  it('keeps warm, whole, idle values and serves them while the reader is live', async () => {
    const reader = new FakeReader();
    const cache = new ShardReadCache(reader, 10);
    await cache.fetch(['a', 'b', 'c', 'd', 'e'], () =>
      Promise.resolve([
        warm(1),
        warm(2, { idle: false }),
        warm(3, { partial: true }),
        warm(4, { lost: true }),
        { cold: true, lost: false },
      ]),
    );
    expect(['a', 'b', 'c', 'd', 'e'].map((k) => cache.get(k))).toEqual([
      1,
      undefined,
      undefined,
      undefined,
      undefined,
    ]);
    reader.isLive = false;
    expect(cache.get('a')).toBeUndefined();
    reader.isLive = true;
    expect(cache.get('a')).toBe(1);
  });

  it('drops a key on its invalidation, and the hash on its pending set’s', async () => {
    const reader = new FakeReader();
    const cache = new ShardReadCache(reader, 10);
    await cache.fetch(['ctr:{1}:a', 'ctr:{1}:b'], () => Promise.resolve([warm(1), warm(2)]));
    reader.invalidate(['ctr:{1}:a']);
    reader.invalidate(['ctr:{1}:b:p']);
    expect(cache.get('ctr:{1}:a')).toBeUndefined();
    expect(cache.get('ctr:{1}:b')).toBeUndefined();
  });

  it('does not keep a reply whose key was invalidated while the read was in flight', async () => {
    const reader = new FakeReader();
    const cache = new ShardReadCache(reader, 10);
    const slow = deferredRead([warm(1), warm(2)]);
    const fetching = cache.fetch(['a', 'b'], slow.read);
    reader.invalidate(['a']);
    slow.release();
    await fetching;
    expect(cache.get('a')).toBeUndefined();
    expect(cache.get('b')).toBe(2);
  });

  it('does not keep a reply after forget() of its key while in flight (this pod’s own write)', async () => {
    const reader = new FakeReader();
    const cache = new ShardReadCache(reader, 10);
    const slow = deferredRead([warm(1)]);
    const fetching = cache.fetch(['a'], slow.read);
    cache.forget('a');
    slow.release();
    await fetching;
    expect(cache.get('a')).toBeUndefined();
  });

  it('keeps the reply of a read sent after an invalidation even while an older read is in flight', async () => {
    const reader = new FakeReader();
    const cache = new ShardReadCache(reader, 10);
    const older = deferredRead([warm(1)]);
    const first = cache.fetch(['a'], older.read);
    reader.invalidate(['a']);
    const second = cache.fetch(['a'], () => Promise.resolve([warm(2)]));
    await second;
    older.release();
    await first;
    expect(cache.get('a')).toBe(2);
  });

  it('keeps nothing read in an older epoch, and serves nothing cached in one', async () => {
    const reader = new FakeReader();
    const cache = new ShardReadCache(reader, 10);
    await cache.fetch(['a'], () => Promise.resolve([warm(1)]));
    const slow = deferredRead([warm(2)]);
    const fetching = cache.fetch(['b'], slow.read);
    reader.epoch += 1;
    slow.release();
    await fetching;
    expect(cache.get('a')).toBeUndefined();
    expect(cache.get('b')).toBeUndefined();
  });

  it('clear() (and a null invalidation) drops everything, including reads in flight', async () => {
    const reader = new FakeReader();
    const cache = new ShardReadCache(reader, 10);
    await cache.fetch(['a'], () => Promise.resolve([warm(1)]));
    const slow = deferredRead([warm(2)]);
    const fetching = cache.fetch(['b'], slow.read);
    reader.invalidate(null);
    slow.release();
    await fetching;
    expect(cache.size).toBe(0);
  });

  it('holds at most maxEntries, dropping the oldest', async () => {
    const reader = new FakeReader();
    const cache = new ShardReadCache(reader, 2);
    await cache.fetch(['a', 'b', 'c'], () => Promise.resolve([warm(1), warm(2), warm(3)]));
    expect(cache.size).toBe(2);
    expect([cache.get('a'), cache.get('b'), cache.get('c')]).toEqual([undefined, 2, 3]);
  });

  it('returns the replies unchanged and keeps nothing when the read fails', async () => {
    const reader = new FakeReader();
    const cache = new ShardReadCache(reader, 10);
    const replies = [warm(1), { cold: true, lost: false } as const];
    await expect(cache.fetch(['a', 'b'], () => Promise.resolve(replies))).resolves.toBe(replies);
    await expect(cache.fetch(['c'], () => Promise.reject(new Error('down')))).rejects.toThrow('down');
    expect(cache.get('c')).toBeUndefined();
  });
});
