/**
 * A per-shard policy around the real shard-1 master: while the master is frozen (SIGSTOP) the
 * policy's timeouts open the breaker, further calls fail fast with a 503-mapped BreakerOpenError
 * without touching Redis, and after the master resumes the half-open probe closes the breaker.
 * The breaker metrics follow. The freeze stays under Sentinel's down-after; resumed in finally.
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
  BreakerOpenError,
  DependencyTimeoutError,
  RedisShardClient,
  createPolicy,
  isDependencyUnavailable,
} from '../src/index.js';

const SHARD = 'shard-1';
const KEY = `hs-test-breaker-${randomBytes(4).toString('hex')}`;
const HALF_OPEN_AFTER_MS = 800;
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

async function metric(
  registry: Registry,
  name: string,
  labels: Record<string, string>,
): Promise<number | undefined> {
  const { values } = (await registry.getSingleMetric(name)?.get()) ?? { values: [] };
  return values.find((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val))?.value;
}

describe('resilience policy around a frozen Redis master', () => {
  const registry = new Registry();
  const shard = new RedisShardClient(
    {
      shard: SHARD,
      sentinels: stack.redis.sentinels.map(({ host, port }) => ({ host, port })),
      masterName: SHARD,
      commandTimeoutMs: 1_000, // the policy's 250 ms attempt budget fires first
      connectionName: 'hs-test-breaker',
    },
    { logger, registry },
  );
  const policy = createPolicy(
    {
      name: 'redis:shard-1',
      dependency: 'redis',
      timeoutMs: 250,
      retry: false,
      breaker: { consecutiveFailures: 3, halfOpenAfterMs: HALF_OPEN_AFTER_MS },
    },
    { registry, logger },
  );
  const labels = { dependency: 'redis', name: 'redis:shard-1' };

  afterAll(async () => {
    await waitShardHealthy();
    await shard.close();
  });

  it('opens on timeouts, fails fast while open, and closes through a half-open probe after resume', async () => {
    await waitShardHealthy();
    await shard.waitUntilReady(10_000);
    await shard.redis.set(KEY, '1', 'PX', 60_000);
    const get = () => policy.execute(() => shard.run((r) => r.get(KEY)));
    await expect(get()).resolves.toBe('1');

    const name = `redis-${(await currentRedisMaster(SHARD)).port}`;
    let timeouts: unknown[] = [];
    let failFast: { err: unknown; ms: number } | undefined;
    let stateWhileFrozen: number | undefined;
    await stopServer(name, 'STOP');
    try {
      timeouts = await Promise.all([get(), get(), get()].map((p) => p.catch((e: unknown) => e)));
      const t = performance.now();
      const err = await get().catch((e: unknown) => e);
      failFast = { err, ms: performance.now() - t };
      stateWhileFrozen = await metric(registry, 'hyperscale_breaker_state', labels);
    } finally {
      await startServer(name); // SIGCONT
    }
    console.log(`[breaker] open breaker rejected a call in ${failFast?.ms.toFixed(2)} ms`);
    for (const err of timeouts) expect(err).toBeInstanceOf(DependencyTimeoutError);
    expect(failFast?.err).toBeInstanceOf(BreakerOpenError);
    expect(isDependencyUnavailable(failFast?.err)).toBe(true);
    expect(failFast?.err).toMatchObject({ status: 503, retryAfterSeconds: 1 });
    expect(failFast?.ms).toBeLessThan(10);
    expect(stateWhileFrozen).toBe(2);
    expect(policy.breakerState()).toBe('open');

    // Still open right after resume (until halfOpenAfter), then one probe closes it.
    await waitShardHealthy();
    await sleep(HALF_OPEN_AFTER_MS);
    await expect(get()).resolves.toBe('1');
    expect(policy.breakerState()).toBe('closed');
    expect(await metric(registry, 'hyperscale_breaker_state', labels)).toBe(0);
    for (const to of ['open', 'half-open', 'closed']) {
      expect(await metric(registry, 'hyperscale_breaker_transitions_total', { ...labels, to })).toBe(1);
    }
    await shard.redis.del(KEY);
  });
});
