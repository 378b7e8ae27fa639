/**
 * RedisShardClient lifecycle against the real shard-1 group: readiness and the up gauge follow the
 * connection, an ioredis client that ends on its own is brought back, close() really closes, and
 * health calls fail fast (not after a timeout) while disconnected.
 */
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { currentRedisMaster, stack } from '../../../hack/testing/stack-control.js';
import { RedisShardClient, RedisUnavailableError } from '../src/index.js';

const SHARD = 'shard-1';
const logger = pino({ level: process.env['TEST_LOG_LEVEL'] ?? 'silent' });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const sentinels = stack.redis.sentinels.map(({ host, port }) => ({ host, port }));

async function up(registry: Registry): Promise<number | undefined> {
  const { values } = (await registry.getSingleMetric('hyperscale_redis_up')?.get()) ?? { values: [] };
  return values.find((v) => v.labels['shard'] === SHARD)?.value;
}

describe('RedisShardClient lifecycle', () => {
  it('connects through Sentinel to the current master and watches every Sentinel', async () => {
    const registry = new Registry();
    const client = new RedisShardClient({ shard: SHARD, sentinels, masterName: SHARD }, { logger, registry });
    try {
      await client.waitUntilReady(10_000);
      await client.waitUntilWatching(10_000);
      const master = await currentRedisMaster(SHARD);
      expect(client.currentMaster()).toEqual(master);
      expect(client.redis.stream.remotePort).toBe(master.port);
      expect(await up(registry)).toBe(1);
      expect(await client.ping(500)).toBeLessThan(500);
      await expect(client.readinessCheck()()).resolves.toBeUndefined();
    } finally {
      await client.close();
    }
    expect(client.redis.status).toBe('end');
    expect(await up(registry)).toBe(0);
  });

  it('brings back a client that ioredis ended on its own, and fails fast while it is down', async () => {
    const registry = new Registry();
    const client = new RedisShardClient(
      { shard: SHARD, sentinels, masterName: SHARD, reconnect: { initialDelayMs: 300, maxDelayMs: 300 } },
      { logger, registry },
    );
    try {
      await client.waitUntilReady(10_000);
      client.redis.disconnect(); // what ioredis does to itself when a connect attempt rejects: status end
      await sleep(50);
      expect(client.redis.status).toBe('end');
      expect(await up(registry)).toBe(0);
      const started = performance.now();
      const err = await client.ping(2_000).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RedisUnavailableError);
      expect(performance.now() - started).toBeLessThan(50); // no waiting for the 2 s budget
      await expect(client.readinessCheck(2_000)()).rejects.toBeInstanceOf(RedisUnavailableError);

      await client.waitUntilReady(5_000);
      expect(await client.redis.ping()).toBe('PONG');
      expect(await up(registry)).toBe(1);
    } finally {
      await client.close();
    }
    await sleep(400);
    expect(client.redis.status).toBe('end'); // close() is final: no revival
  });

  it('works against a single server without Sentinel and never emits master-switch', async () => {
    const master = await currentRedisMaster(SHARD);
    const client = new RedisShardClient(
      { shard: SHARD, host: master.host, port: master.port },
      { logger, registry: new Registry() },
    );
    let switches = 0;
    client.on('master-switch', () => switches++);
    try {
      await client.waitUntilReady(10_000);
      await client.waitUntilWatching(10); // nothing to watch: resolves at once
      expect(client.masterName).toBeUndefined();
      expect(client.currentMaster()).toBeNull();
      client.redis.stream.destroy(); // reconnects to the same address
      await sleep(200);
      await client.waitUntilReady(5_000);
      expect(switches).toBe(0);
    } finally {
      await client.close();
    }
  });
});
