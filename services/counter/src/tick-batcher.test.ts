import { describe, expect, it } from 'vitest';
import { TickBatcher } from './tick-batcher.js';

describe('TickBatcher', () => {
  it('runs the calls of one turn as one batch, each caller getting its own result', async () => {
    const batches: number[][] = [];
    const batcher = new TickBatcher(async (items: readonly number[]) => {
      batches.push([...items]);
      return items.map((n) => n * 10);
    }, 100);
    const first = await Promise.all([1, 2, 3].map((n) => batcher.submit(n)));
    const second = await batcher.submit(4);
    expect(first).toEqual([10, 20, 30]);
    expect(second).toBe(40);
    expect(batches).toEqual([[1, 2, 3], [4]]);
  });

  it('sends a full batch at once and the rest at the end of the turn', async () => {
    const batches: number[][] = [];
    const batcher = new TickBatcher(async (items: readonly number[]) => {
      batches.push([...items]);
      return [...items];
    }, 2);
    const results = await Promise.all([1, 2, 3, 4, 5].map((n) => batcher.submit(n)));
    expect(results).toEqual([1, 2, 3, 4, 5]);
    expect(batches).toEqual([[1, 2], [3, 4], [5]]);
  });

  it('rejects every caller of a failed batch, and of a batch with a result missing', async () => {
    let mode: 'fail' | 'short' = 'fail';
    const batcher = new TickBatcher(async (items: readonly number[]) => {
      if (mode === 'fail') throw new Error('shard down');
      return items.slice(1);
    }, 10);
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
