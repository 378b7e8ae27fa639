/**
 * READONLY handling against the real shard-1 replica: a direct client pointed at a replica gets a
 * typed, retryable RedisReadOnlyError for writes (counted as kind=readonly), reads keep working,
 * and the client reconnects on READONLY (for a Sentinel client that reconnect re-resolves the
 * master; the failover tests prove it never stays on a demoted primary).
 */
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { currentRedisMaster, stack } from '../../../hack/testing/stack-control.js';
import { RedisError, RedisReadOnlyError, RedisShardClient } from '../src/index.js';

const SHARD = 'shard-1';
const KEY = `hs-test-readonly-${randomBytes(4).toString('hex')}`;
const logger = pino({ level: process.env['TEST_LOG_LEVEL'] ?? 'silent' });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function errorsOfKind(registry: Registry, kind: string): Promise<number> {
  const { values } = (await registry.getSingleMetric('hyperscale_redis_command_errors_total')?.get()) ?? {
    values: [],
  };
  return values.find((v) => v.labels['shard'] === SHARD && v.labels['kind'] === kind)?.value ?? 0;
}

/**
 * Retries `op` for up to 10 s: right after READONLY the client is reconnecting and fails fast
 * ("Stream isn't writeable"); the reconnect and its ready check take tens of ms, more on a
 * loaded machine.
 */
async function eventually<T>(op: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      return await op();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(20);
    }
  }
}

describe('READONLY from a replica', () => {
  const registry = new Registry();
  let master: RedisShardClient;
  let replica: RedisShardClient;

  beforeAll(async () => {
    const masterPort = (await currentRedisMaster(SHARD)).port;
    const replicaPort = stack.redis.shards
      .find((s) => s.name === SHARD)!
      .ports.find((p) => p !== masterPort)!;
    master = new RedisShardClient(
      { shard: SHARD, host: '127.0.0.1', port: masterPort },
      { logger, registry: new Registry() },
    );
    replica = new RedisShardClient(
      { shard: SHARD, host: '127.0.0.1', port: replicaPort, connectionName: 'hs-test-readonly' },
      { logger, registry },
    );
    await Promise.all([master.waitUntilReady(10_000), replica.waitUntilReady(10_000)]);
    await master.redis.set(KEY, 'from-master');
    await master.redis.wait(1, 2_000); // replicated before we read it from the replica
  });

  afterAll(async () => {
    await master?.redis.del(KEY);
    await Promise.all([master?.close(), replica?.close()]);
  });

  it('rejects a write with a typed, retryable RedisReadOnlyError and reconnects', async () => {
    const idBefore = await replica.redis.client('ID');
    const err = await replica.run((r) => r.set(KEY, 'from-replica')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RedisReadOnlyError);
    expect(err).toBeInstanceOf(RedisError);
    expect(err).toMatchObject({ kind: 'readonly', code: 'READONLY', retryable: true, shard: SHARD });
    expect((err as Error).message).toMatch(/^READONLY/);
    expect(await errorsOfKind(registry, 'readonly')).toBe(1);

    // reconnectOnError dropped the connection: the next successful command runs on a new one.
    const idAfter = await eventually(() => replica.redis.client('ID'));
    expect(Number(idAfter)).not.toBe(Number(idBefore));
    // Reads keep working on the replica, and the write never happened. CLIENT ID may answer while
    // the new connection's ready check still runs (ioredis lets its handshake commands, CLIENT
    // among them, through before `ready`); a GET fails fast until then.
    expect(await eventually(() => replica.redis.get(KEY))).toBe('from-master');
  });

  it('types READONLY from a Lua script that writes on the replica as well', async () => {
    await replica.waitUntilReady(10_000);
    const { hsTestReadonlyWrite } = replica.defineScripts({
      hsTestReadonlyWrite: { lua: "return redis.call('SET', KEYS[1], 'x')", numberOfKeys: 1 },
    });
    const err = await hsTestReadonlyWrite([KEY]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RedisReadOnlyError);
    expect(err).toMatchObject({ shard: SHARD, retryable: true });
    expect(await errorsOfKind(registry, 'readonly')).toBe(2);
    expect(await eventually(() => replica.redis.get(KEY))).toBe('from-master');
  });
});
