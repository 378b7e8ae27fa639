import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { MysqlExecutor } from '../mysql/pool.js';
import { partitionFor } from './partition.js';
import { WriterBarrier } from './writer-barrier.js';

const logger = pino({ enabled: false });

function fakePrimary(positions: Map<number, string>): MysqlExecutor & { selects: number } {
  const executor = {
    selects: 0,
    async select<T extends object>() {
      executor.selects += 1;
      return [...positions].map(([partition, next_offset]) => ({ partition, next_offset })) as unknown as T[];
    },
    async execute() {
      throw new Error('not used');
    },
  };
  return executor;
}

function barrierWith(
  high: () => Promise<{ partition: number; high: string }[]>,
  positions: Map<number, string>,
) {
  const primary = fakePrimary(positions);
  const barrier = new WriterBarrier({
    topic: 't',
    groupId: 'g',
    highWatermarks: high,
    primary,
    logger,
    pollIntervalMs: 5,
    fetchTimeoutMs: 100,
  });
  return { barrier, primary };
}

const marks = (high: string) => Array.from({ length: 6 }, (_, partition) => ({ partition, high }));

describe('WriterBarrier', () => {
  it('passes at once when the post’s partition is empty', async () => {
    const { barrier, primary } = barrierWith(async () => marks('0'), new Map());
    expect((await barrier.waitForKey('p', 1_000)).kind).toBe('passed');
    expect(primary.selects).toBe(0);
  });

  it('waits until the writer’s stored position reaches the high watermark', async () => {
    const positions = new Map<number, string>();
    const { barrier } = barrierWith(async () => marks('10'), positions);
    const partition = partitionFor('post-9', 6);
    setTimeout(() => positions.set(partition, '9'), 20);
    setTimeout(() => positions.set(partition, '10'), 60);
    const outcome = await barrier.waitForKey('post-9', 2_000);
    expect(outcome).toMatchObject({ kind: 'passed', partition, target: '10' });
    expect(outcome.kind === 'passed' && outcome.waitedMs).toBeGreaterThanOrEqual(50);
  });

  it('times out with the last position seen', async () => {
    const partition = partitionFor('late', 6);
    const { barrier } = barrierWith(async () => marks('10'), new Map([[partition, '4']]));
    expect(await barrier.waitForKey('late', 50)).toMatchObject({
      kind: 'timeout',
      target: '10',
      position: '4',
    });
  });

  it('times out at its deadline while a read of the writer position hangs (a frozen primary)', async () => {
    const hungPrimary: MysqlExecutor = {
      select: () => new Promise(() => undefined),
      execute: () => Promise.reject(new Error('not used')),
    };
    const barrier = new WriterBarrier({
      topic: 't',
      groupId: 'g',
      highWatermarks: async () => marks('10'),
      primary: hungPrimary,
      logger,
      pollIntervalMs: 5,
    });
    const started = Date.now();
    const outcome = await Promise.race([
      barrier.waitForKey('frozen', 50),
      new Promise((resolve) => setTimeout(() => resolve('still waiting'), 1_000)),
    ]);
    expect(outcome).toMatchObject({ kind: 'timeout', target: '10', position: null });
    expect(Date.now() - started).toBeLessThan(500);
  });

  it('reports an unreachable Kafka (failed or hung fetch) as unavailable', async () => {
    const failing = barrierWith(async () => Promise.reject(new Error('down')), new Map());
    expect((await failing.barrier.waitForKey('x', 1_000)).kind).toBe('unavailable');
    const hung = barrierWith(() => new Promise(() => undefined), new Map());
    expect((await hung.barrier.waitForKey('x', 1_000)).kind).toBe('unavailable');
  });

  it('never reuses a watermark fetched before the call (at most one fetch in flight, one queued)', async () => {
    let fetches = 0;
    let release: (() => void) | undefined;
    const high = () => {
      fetches += 1;
      return new Promise<{ partition: number; high: string }[]>((resolve) => {
        release = () => resolve(marks('0'));
      });
    };
    const { barrier } = barrierWith(high, new Map());
    const first = barrier.waitForKey('a', 1_000);
    await Promise.resolve();
    const second = barrier.waitForKey('b', 1_000); // arrives while fetch 1 runs → fetch 2
    const third = barrier.waitForKey('c', 1_000); // shares fetch 2
    expect(fetches).toBe(1);
    release?.();
    await first;
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(fetches).toBe(2);
    release?.();
    await Promise.all([second, third]);
    expect(fetches).toBe(2);
  });
});
