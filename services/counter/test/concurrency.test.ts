import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { idempotencyKey, waitForRedisReady } from '@hyperscale/platform';
import { counterKeys, slotOf, slotTag } from '../src/keys.js';
import { COUNTER_SCRIPTS, parseIncrResult } from '../src/scripts.js';
import { MASTER_NAMES, createTestContext, ownerOf, sleep, type TestContext } from './helpers.js';

let ctx: TestContext;

beforeAll(async () => {
  ctx = await createTestContext('concurrency');
});
afterAll(async () => {
  await ctx?.close();
});

describe('concurrency', () => {
  it('50,000 increments over 100 names from 200 concurrent clients are exact in Redis and MySQL', async () => {
    const writer = await ctx.startWriter();
    const names = Array.from({ length: 100 }, (_, i) => ctx.name(`n${i}`));
    const auth = await ctx.auth();
    const total = 50_000;
    let next = 0;
    const failures: number[] = [];
    const started = Date.now();
    await Promise.all(
      Array.from({ length: 200 }, async () => {
        for (;;) {
          const i = next++;
          if (i >= total) return;
          const res = await ctx.app.inject({
            method: 'POST',
            url: `/v1/counters/${names[i % 100]}/increment`,
            headers: auth,
          });
          if (res.statusCode !== 200) failures.push(res.statusCode);
        }
      }),
    );
    const seconds = (Date.now() - started) / 1000;
    console.info(
      `50,000 increments in ${seconds.toFixed(1)} s = ${Math.round(total / seconds)}/s (in-process app)`,
    );
    expect(failures).toEqual([]);
    for (const name of names) expect(await ctx.redisValue(name, ownerOf(ctx, name))).toBe(500);
    const drainStart = Date.now();
    await ctx.waitDrained(120_000);
    console.info(`writer drained ${total} deltas ${Date.now() - drainStart} ms after the last ack`);
    const rows = await ctx.pools.primary.select<{ name: string; value: string }>(
      `SELECT name, value FROM counters WHERE name IN (${names.map(() => '?').join(',')})`,
      names,
    );
    expect(rows).toHaveLength(100);
    expect(rows.every((r) => Number(r.value) === 500)).toBe(true);
    // Every shard is used by the even split.
    expect(new Set(names.map((n) => ownerOf(ctx, n))).size).toBe(MASTER_NAMES.length);
    await writer.stop();
  }, 180_000);

  it('an increment re-sent after dropped connections is applied once (idempotent script)', async () => {
    const name = ctx.name('resend');
    const shardName = ownerOf(ctx, name);
    const shard = ctx.shard(shardName);
    const scripts = shard.defineScripts(COUNTER_SCRIPTS);
    const keys = counterKeys(name);
    const slot = slotOf(name);
    await shard.redis.hset(keys.value, 'v', 0, 'g', 'test');
    const clientId = Number(await shard.redis.client('ID'));
    const killer = shard.redis.duplicate();
    await waitForRedisReady(killer, 5_000);
    let applied = 0;
    let replayed = 0;
    let failed = 0;
    const all: string[] = [];
    const incr = (id: string) =>
      scripts.ctrIncr(
        [idempotencyKey(slotTag(slot), id), keys.value, keys.pending],
        [60_000, 1, id, 60_000, 600_000, 'o'],
      );
    // Waves of increments with the connection killed while they are in flight: ioredis re-sends
    // the unanswered ones on the new connection, although the server may have run them already.
    for (let wave = 0; wave < 20; wave += 1) {
      const ids = Array.from({ length: 200 }, () => randomUUID());
      all.push(...ids);
      const calls = ids.map((id) =>
        incr(id).then(
          (reply) => {
            parseIncrResult(reply.result);
            if (reply.applied) applied += 1;
            else replayed += 1;
          },
          () => (failed += 1),
        ),
      );
      await sleep(wave % 3);
      const id = Number(
        await killer
          .client('LIST')
          .then(() => shard.redis.client('ID'))
          .catch(() => clientId),
      );
      await killer.client('KILL', 'ID', String(id)).catch(() => undefined);
      await Promise.all(calls);
      await shard.waitUntilReady(5_000);
    }
    console.info(
      `resend test: ${all.length} ids, applied ${applied}, replayed (re-sent, already applied) ${replayed}, failed ${failed}`,
    );
    // Now settle every id once more (a client retry): an id already applied returns applied=false,
    // one that never ran is applied now. Exactly-once means the value is exactly the number of ids.
    let ranBeforeFailure = 0;
    const settle = async (id: string) => {
      for (let attempt = 0; ; attempt += 1) {
        try {
          return await incr(id);
        } catch (err) {
          if (attempt >= 20) throw err;
          await shard.waitUntilReady(5_000);
          await sleep(20);
        }
      }
    };
    for (const id of all) if (!(await settle(id)).applied) ranBeforeFailure += 1;
    console.info(
      `${ranBeforeFailure - applied - replayed} of ${failed} calls that failed on the client had run on the server`,
    );
    expect(Number(await shard.redis.hget(keys.value, 'v'))).toBe(all.length);
    expect(replayed + failed).toBeGreaterThan(0);
    // A re-send is the same script with the same request id arriving again (also concurrently on
    // two connections, e.g. after a reconnect raced a slow reply): applied exactly once.
    const dup = randomUUID();
    const other = shard.redis.duplicate();
    await waitForRedisReady(other, 5_000);
    const otherScripts = COUNTER_SCRIPTS.ctrIncr;
    other.defineCommand('ctrIncrDup', { lua: otherScripts.lua, numberOfKeys: otherScripts.numberOfKeys });
    const dupKeys = [idempotencyKey(slotTag(slot), dup), keys.value, keys.pending];
    const dupArgs = [60_000, 1, dup, 60_000, 600_000, 'o'];
    const replies = await Promise.all([
      ...Array.from({ length: 25 }, () => settle(dup)),
      ...Array.from({ length: 25 }, () =>
        (other as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)['ctrIncrDup']!(
          ...dupKeys,
          ...dupArgs,
        ),
      ),
    ]);
    const appliedCount = replies.filter((r) =>
      Array.isArray(r) ? r[0] === 1 : (r as { applied: boolean }).applied,
    ).length;
    expect(appliedCount).toBe(1);
    expect(Number(await shard.redis.hget(keys.value, 'v'))).toBe(all.length + 1);
    await other.quit();
    await killer.quit();
  }, 60_000);
});
