/**
 * TrackedReader against the real shard-2 group: Redis reports changes to keys its connection read
 * (inside scripts too) to its own subscriber; a closed connection starts a new epoch and tracking
 * comes back with a new redirect; a connection that stays open but stops delivering (a paused
 * proxy) stops `live()` within `maxStalenessMs`, and what was held arrives on resume.
 */
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPausableProxy } from '../../../hack/testing/pausable-proxy.js';
import { currentRedisMaster, stack } from '../../../hack/testing/stack-control.js';
import { RedisShardClient, type TrackedReader } from '../src/index.js';

const SHARD = 'shard-2';
const logger = pino({ level: process.env['TEST_LOG_LEVEL'] ?? 'silent' });
const sentinels = stack.redis.sentinels.map(({ host, port }) => ({ host, port }));
const prefix = `hs-test-tracking:${Date.now().toString(36)}:`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(check: () => boolean, timeoutMs: number, what: string): Promise<number> {
  const started = Date.now();
  while (!check()) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
    await sleep(5);
  }
  return Date.now() - started;
}

/** Collects what the reader reports. */
function watch(reader: TrackedReader) {
  const keys: string[] = [];
  let resets = 0;
  reader.onInvalidate((changed) => {
    if (changed === null) resets += 1;
    else keys.push(...changed);
  });
  return { keys, resets: () => resets };
}

const HGET = "return redis.call('HGET', KEYS[1], 'v')";

describe('TrackedReader', () => {
  let shard: RedisShardClient;
  let writer: Redis;

  beforeAll(async () => {
    shard = new RedisShardClient(
      { shard: SHARD, sentinels, masterName: SHARD },
      { logger, registry: new Registry() },
    );
    await shard.waitUntilReady(10_000);
    writer = shard.redis;
  });

  afterAll(async () => {
    const keys = await writer.keys(`${prefix}*`);
    if (keys.length > 0) await writer.del(...keys);
    await shard.close();
  });

  it('reports a change by another client to a key a script on its connection read, and only those', async () => {
    const reader = shard.openTrackedReader({ maxStalenessMs: 1_000 });
    const seen = watch(reader);
    const [read, unread] = [`${prefix}read`, `${prefix}unread`];
    await writer.hset(read, 'v', 1);
    await writer.hset(unread, 'v', 1);
    await until(() => reader.live(), 5_000, 'tracking on');
    expect(await reader.redis.eval(HGET, 1, read)).toBe('1');

    await writer.hincrby(unread, 'v', 1);
    await writer.hincrby(read, 'v', 1);
    const ms = await until(() => seen.keys.includes(read), 1_000, 'the invalidation');
    expect(seen.keys).not.toContain(unread);
    // Reported once per read: a second change before the next read sends nothing.
    await writer.hincrby(read, 'v', 1);
    await writer.ping();
    await sleep(50);
    expect(seen.keys.filter((k) => k === read)).toHaveLength(1);
    expect(ms).toBeLessThan(1_000);
    reader.close();
  });

  it('stops being live as soon as a connection closes, and tracks again with the new redirect', async () => {
    // Reconnects wait 400 ms, so the window in which invalidations are lost is long enough to see.
    const slow = new RedisShardClient(
      { shard: SHARD, sentinels, masterName: SHARD, reconnect: { initialDelayMs: 400, maxDelayMs: 400 } },
      { logger, registry: new Registry() },
    );
    await slow.waitUntilReady(10_000);
    const reader = slow.openTrackedReader({ maxStalenessMs: 2_000, connectionName: `${prefix}kill` });
    const seen = watch(reader);
    const key = `${prefix}epoch`;
    await writer.hset(key, 'v', 1);
    await until(() => reader.live(), 5_000, 'tracking on');

    for (const connection of ['invalidations', 'reads']) {
      const epoch = reader.epoch;
      const resets = seen.resets();
      const list = String(await writer.client('LIST'));
      const id = /^id=(\d+) .*name=(\S+)/gm;
      let target: string | undefined;
      for (const match of list.matchAll(id))
        if (match[2] === `${prefix}kill:${connection}`) target = match[1];
      expect(target, `a connection named ${prefix}kill:${connection}`).toBeDefined();
      await writer.client('KILL', 'ID', String(target));
      // Not after the 2 s staleness bound: at the close itself.
      await until(() => !reader.live(), 100, `live() false after the ${connection} connection closed`);
      expect(reader.epoch).not.toBe(epoch);
      expect(seen.resets()).toBeGreaterThan(resets);

      await until(() => reader.live(), 5_000, 'tracking on again');
      await reader.redis.eval(HGET, 1, key);
      const before = seen.keys.length;
      await writer.hincrby(key, 'v', 1);
      await until(
        () => seen.keys.slice(before).includes(key),
        1_000,
        `an invalidation after the ${connection} reconnect`,
      );
    }
    reader.close();
    const named = async () =>
      (String(await writer.client('LIST')).match(new RegExp(`name=${prefix}kill:`, 'g')) ?? []).length;
    const started = Date.now();
    while ((await named()) > 0 && Date.now() - started < 2_000) await sleep(20);
    expect(await named()).toBe(0);
    await slow.close();
  });

  it('stops being live within maxStalenessMs when invalidations stop arriving on an open connection', async () => {
    const master = await currentRedisMaster(SHARD);
    const proxy = await startPausableProxy(master);
    const direct = new RedisShardClient(
      { shard: `${SHARD}-proxied`, host: '127.0.0.1', port: proxy.port, commandTimeoutMs: 5_000 },
      { logger, registry: new Registry() },
    );
    const maxStalenessMs = 800;
    const reader = direct.openTrackedReader({ maxStalenessMs, heartbeatMs: 100 });
    const seen = watch(reader);
    const key = `${prefix}partition`;
    try {
      await writer.hset(key, 'v', 1);
      await until(() => reader.live(), 5_000, 'tracking on');
      await reader.redis.eval(HGET, 1, key);
      const epoch = reader.epoch;

      proxy.pause();
      const pausedAt = Date.now();
      await writer.hincrby(key, 'v', 1); // its invalidation is held by the proxy
      await until(() => !reader.live(), maxStalenessMs + 500, 'live() to turn false');
      const ms = Date.now() - pausedAt;
      expect(ms).toBeLessThanOrEqual(maxStalenessMs + 200);
      expect(seen.keys).not.toContain(key);

      proxy.resume();
      await until(() => seen.keys.includes(key), 2_000, 'the held invalidation');
      await until(() => reader.live(), 2_000, 'live again after the held pongs');
      // The connection never closed: same epoch, nothing dropped that was not invalidated.
      expect(reader.epoch).toBe(epoch);
    } finally {
      reader.close();
      await direct.close();
      await proxy.close();
    }
  });
});
