/**
 * A frozen shard-1 master (SIGSTOP: the port stays open, nothing answers). Commands must fail
 * within commandTimeout instead of hanging, PING and readiness must fail within their own budget,
 * and the error metric must count the timeouts. Also shows why writes need request ids: the
 * timed-out SETs still land once the server resumes. The freeze stays well under Sentinel's
 * down-after (1500 ms) so no failover is triggered; the master is resumed in a finally block.
 */
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import {
  currentRedisMaster,
  isHealthy,
  stack,
  startServer,
  stopServer,
} from '../../../hack/testing/stack-control.js';
import {
  RedisShardClient,
  RedisTimeoutError,
  pingWithTimeout,
  type MasterSwitchEvent,
} from '../src/index.js';

const SHARD = 'shard-1';
const KEY = `hs-test-frozen-${randomBytes(4).toString('hex')}`;
const COMMAND_TIMEOUT_MS = 400;
const logger = pino({ level: process.env['TEST_LOG_LEVEL'] ?? 'silent' });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const group = stack.redis.shards.find((s) => s.name === SHARD)!;

async function waitShardHealthy(timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await Promise.all(group.ports.map((p) => isHealthy(`redis-${p}`)))).every(Boolean)) {
    if (Date.now() > deadline) throw new Error(`${SHARD} not healthy within ${timeoutMs} ms`);
    await sleep(250);
  }
}

/** Settles `p`, measuring how long it took. */
async function timed<T>(p: Promise<T>): Promise<{ ms: number; value?: T; error?: unknown }> {
  const started = performance.now();
  try {
    const value = await p;
    return { ms: performance.now() - started, value };
  } catch (error) {
    return { ms: performance.now() - started, error };
  }
}

describe('frozen shard-1 master (SIGSTOP)', () => {
  const registry = new Registry();
  const client = new RedisShardClient(
    {
      shard: SHARD,
      sentinels: stack.redis.sentinels.map(({ host, port }) => ({ host, port })),
      masterName: SHARD,
      commandTimeoutMs: COMMAND_TIMEOUT_MS,
      connectionName: 'hs-test-frozen',
    },
    { logger, registry },
  );

  afterAll(async () => {
    await waitShardHealthy();
    await client.waitUntilReady(10_000).catch(() => undefined);
    await client.redis.del(KEY).catch(() => undefined);
    await client.close();
  });

  it('fails commands, PING and readiness within their timeouts instead of hanging', async () => {
    await waitShardHealthy();
    await client.waitUntilReady(10_000);
    const switches: MasterSwitchEvent[] = [];
    client.on('master-switch', (e) => switches.push(e));
    await client.redis.set(KEY, 'before');
    expect(await client.ping(500)).toBeLessThan(500);
    await expect(client.readinessCheck(300)()).resolves.toBeUndefined();

    const master = await currentRedisMaster(SHARD);
    const name = `redis-${master.port}`;
    let frozenMs = 0;
    let results: Awaited<ReturnType<typeof timed>>[] = [];
    let ping: Awaited<ReturnType<typeof timed>> | undefined;
    let readiness: Awaited<ReturnType<typeof timed>> | undefined;
    await stopServer(name, 'STOP');
    const frozenAt = performance.now();
    try {
      [results, ping, readiness] = await Promise.all([
        Promise.all(Array.from({ length: 10 }, (_, i) => timed(client.run((r) => r.set(KEY, `v${i}`))))),
        timed(pingWithTimeout(client.redis, 250, SHARD)),
        timed(Promise.resolve(client.readinessCheck(250)())),
      ]);
    } finally {
      await startServer(name); // SIGCONT
      frozenMs = performance.now() - frozenAt;
    }
    console.log(
      `[frozen] master ${master.port} frozen for ${frozenMs.toFixed(0)} ms: SETs failed after ` +
        `${Math.min(...results.map((r) => r.ms)).toFixed(0)}-${Math.max(...results.map((r) => r.ms)).toFixed(0)} ms ` +
        `(commandTimeout ${COMMAND_TIMEOUT_MS}), PING after ${ping?.ms.toFixed(0)} ms, readiness after ${readiness?.ms.toFixed(0)} ms`,
    );
    for (const r of results) {
      expect(r.error).toBeInstanceOf(RedisTimeoutError);
      expect(r.error).toMatchObject({ shard: SHARD, retryable: true });
      expect(r.ms).toBeGreaterThanOrEqual(COMMAND_TIMEOUT_MS - 20);
      expect(r.ms).toBeLessThan(COMMAND_TIMEOUT_MS + 300);
    }
    expect(ping?.error).toBeInstanceOf(RedisTimeoutError);
    expect(ping?.ms).toBeLessThan(250 + 200);
    expect(readiness?.error).toBeInstanceOf(RedisTimeoutError);
    expect(readiness?.ms).toBeLessThan(250 + 200);

    const { values } = (await registry.getSingleMetric('hyperscale_redis_command_errors_total')?.get()) ?? {
      values: [],
    };
    const timeouts =
      values.find((v) => v.labels['shard'] === SHARD && v.labels['kind'] === 'timeout')?.value ?? 0;
    expect(timeouts).toBeGreaterThanOrEqual(10);

    // Resumed: the same connection answers again, and the SETs the caller saw time out DID land.
    // A timed-out write is "unknown", not "failed": hence request ids in state-changing scripts.
    await waitShardHealthy();
    let value: string | null = null;
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      try {
        value = await client.redis.get(KEY);
        break;
      } catch {
        await sleep(50);
      }
    }
    if (switches.length === 0) expect(value).toBe('v9');
    else
      console.log(`[frozen] a failover happened during the freeze (${switches.length}); value now ${value}`);
    await expect(client.ping(500)).resolves.toBeLessThan(500);
  });
});
