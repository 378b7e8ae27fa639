import { describe, expect, it } from 'vitest';
import { TickBatcher } from './tick-batcher.js';

describe('TickBatcher', () => {
  it('runs the calls of one turn as one batch, each caller getting its own result', async () => {
    const batches: number[][] = [];
    const batcher = new TickBatcher(
      async (items: readonly number[]) => {
        batches.push([...items]);
        return items.map((n) => n * 10);
      },
      { maxBatch: 100 },
    );
    const first = await Promise.all([1, 2, 3].map((n) => batcher.submit(n)));
    const second = await batcher.submit(4);
    expect(first).toEqual([10, 20, 30]);
    expect(second).toBe(40);
    expect(batches).toEqual([[1, 2, 3], [4]]);
  });

  it('with queueMicrotask, batches one synchronous stretch and does not wait for the next turn', async () => {
    const batches: number[][] = [];
    const batcher = new TickBatcher(
      async (items: readonly number[]) => {
        batches.push([...items]);
        return [...items];
      },
      { maxBatch: 100, schedule: queueMicrotask },
    );
    let immediateRan = false;
    setImmediate(() => (immediateRan = true));
    const results = await Promise.all([1, 2, 3].map((n) => batcher.submit(n)));
    expect(results).toEqual([1, 2, 3]);
    expect(batches).toEqual([[1, 2, 3]]);
    expect(immediateRan).toBe(false);
  });

  it('sends a full batch at once and the rest at the end of the turn', async () => {
    const batches: number[][] = [];
    const batcher = new TickBatcher(
      async (items: readonly number[]) => {
        batches.push([...items]);
        return [...items];
      },
      { maxBatch: 2 },
    );
    const results = await Promise.all([1, 2, 3, 4, 5].map((n) => batcher.submit(n)));
    expect(results).toEqual([1, 2, 3, 4, 5]);
    expect(batches).toEqual([[1, 2], [3, 4], [5]]);
  });

  it('while a batch is in flight, later calls wait and go together when it returns', async () => {
    const batches: number[][] = [];
    const replies: (() => void)[] = [];
    const batcher = new TickBatcher(
      (items: readonly number[]) => {
        batches.push([...items]);
        return new Promise<readonly number[]>((resolve) => replies.push(() => resolve(items)));
      },
      { maxBatch: 3 },
    );
    const first = batcher.submit(1);
    await new Promise((resolve) => setImmediate(resolve));
    expect(batches).toEqual([[1]]);
    // Three turns while the first batch is out: nothing is sent until it returns…
    const later = [batcher.submit(2)];
    await new Promise((resolve) => setImmediate(resolve));
    later.push(batcher.submit(3));
    await new Promise((resolve) => setImmediate(resolve));
    expect(batches).toEqual([[1]]);
    // …except a full batch, which goes at once.
    later.push(batcher.submit(4), batcher.submit(5), batcher.submit(6));
    expect(batches).toEqual([[1], [2, 3, 4]]);
    replies.shift()!();
    expect(await first).toBe(1);
    await new Promise((resolve) => setImmediate(resolve));
    expect(batches).toEqual([[1], [2, 3, 4]]); // the full batch is still out
    replies.shift()!();
    await new Promise((resolve) => setImmediate(resolve));
    expect(batches).toEqual([[1], [2, 3, 4], [5, 6]]);
    while (replies.length > 0) {
      replies.shift()!();
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(await Promise.all(later)).toEqual([2, 3, 4, 5, 6]);
  });

  it('rejects an invalid maxBatch or maxInFlight', () => {
    const run = async (items: readonly number[]) => items;
    expect(() => new TickBatcher(run, { maxBatch: 0 })).toThrow(RangeError);
    expect(() => new TickBatcher(run, { maxBatch: 1, maxInFlight: 0 })).toThrow(RangeError);
  });

  it('rejects every caller of a failed batch, and of a batch with a result missing', async () => {
    let mode: 'fail' | 'short' = 'fail';
    const batcher = new TickBatcher(
      async (items: readonly number[]) => {
        if (mode === 'fail') throw new Error('shard down');
        return items.slice(1);
      },
      { maxBatch: 10 },
    );
    const settle = (p: Promise<number>) => p.then(String, (err: Error) => err.message);
    expect(await Promise.all([settle(batcher.submit(1)), settle(batcher.submit(2))])).toEqual([
      'shard down',
      'shard down',
    ]);
    mode = 'short';
    const short = await Promise.all([settle(batcher.submit(1)), settle(batcher.submit(2))]);
    expect(short.every((message) => message.includes('1 results for 2 calls'))).toBe(true);
  });
});
