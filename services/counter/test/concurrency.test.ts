import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { idempotencyKey, waitForRedisReady } from '@hyperscale/platform';
import { counterKeys, slotOf, slotTag } from '../src/keys.js';
import { COUNTER_SCRIPTS, parseIncrResult, type IncrReply } from '../src/scripts.js';
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

  it('one ctrIncrAckMany call: acks clear pending entries and drop re-warmed hashes; warm counters applied, cold, stale and leftover-partial ones refused and not recorded, a migration partial created, a repeated id applied once', async () => {
    // Names on one shard (a batch script only ever carries the counters of one shard).
    const shardName = ownerOf(ctx, ctx.name('batch-0'));
    const names: string[] = [];
    for (let i = 0; names.length < 7; i += 1) {
      const name = ctx.name(`batch-${i}`);
      if (ownerOf(ctx, name) === shardName) names.push(name);
    }
    const [warm, cold, moving, stale, leftover, acked, rewarmed] = names as [
      string,
      string,
      string,
      string,
      string,
      string,
      string,
    ];
    const shard = ctx.shard(shardName);
    const scripts = shard.defineScripts(COUNTER_SCRIPTS);
    const keysOf = (name: string) => counterKeys(name, slotOf(name));
    await shard.redis.hset(keysOf(warm).value, 'v', 40, 'g', 'gen-w');
    // A pod died before its ack: a pending entry long expired. And a migration partial left behind.
    await shard.redis.hset(keysOf(stale).value, 'v', 9, 'g', 'gen-s');
    await shard.redis.zadd(keysOf(stale).pending, Date.now() - 60_000, 'lost-event');
    await shard.redis.hset(keysOf(leftover).value, 'v', 3, 'g', 'gen-l', 'm', '1');
    // Two increments awaiting their ack: one still on its hash's generation, one whose hash was
    // re-warmed meanwhile (possibly from a snapshot without its delta).
    await shard.redis.hset(keysOf(acked).value, 'v', 7, 'g', 'gen-a');
    await shard.redis.zadd(keysOf(acked).pending, Date.now() + 60_000, 'ev-a');
    await shard.redis.hset(keysOf(rewarmed).value, 'v', 5, 'g', 'gen-new');
    await shard.redis.zadd(keysOf(rewarmed).pending, Date.now() + 60_000, 'ev-r');
    const item = (name: string, id: string, delta: number, mode: 'o' | 'm') => ({
      keys: [idempotencyKey(slotTag(slotOf(name)), id), keysOf(name).value, keysOf(name).pending],
      args: [delta, id, mode],
    });
    const ids = [randomUUID(), randomUUID(), randomUUID()] as const;
    const items = [
      item(warm, ids[0], 2, 'o'),
      item(cold, ids[1], 5, 'o'),
      item(moving, ids[2], 3, 'm'),
      item(warm, ids[0], 2, 'o'), // the same request id again in the same call
      item(warm, randomUUID(), -1, 'o'),
      item(stale, randomUUID(), 1, 'o'),
      item(leftover, randomUUID(), 1, 'o'),
    ];
    const reply = await scripts.ctrIncrAckMany(
      [
        ...items.flatMap((i) => i.keys),
        ...[acked, rewarmed].flatMap((name) => [keysOf(name).value, keysOf(name).pending]),
      ],
      [
        60_000,
        60_000,
        600_000,
        items.length,
        ...items.flatMap((i) => i.args),
        'gen-a',
        'ev-a',
        'gen-old',
        'ev-r',
      ],
    );
    expect(reply.acks).toEqual([true, false]);
    expect(await shard.redis.zcard(keysOf(acked).pending)).toBe(0);
    expect(await shard.redis.hget(keysOf(acked).value, 'v')).toBe('7');
    expect(await shard.redis.exists(keysOf(rewarmed).value, keysOf(rewarmed).pending)).toBe(0);
    expect(reply.increments).toEqual([
      { kind: 'done', applied: true, result: '42:0:gen-w' },
      { kind: 'cold' },
      { kind: 'done', applied: true, result: `3:1:${ids[2]}` },
      { kind: 'done', applied: false, result: '42:0:gen-w' },
      { kind: 'done', applied: true, result: '41:0:gen-w' },
      { kind: 'cold' },
      { kind: 'cold' },
    ]);
    expect(await shard.redis.exists(keysOf(cold).value)).toBe(0);
    // Both are deleted, so the next increment warms them from MySQL.
    expect(await shard.redis.exists(keysOf(stale).value, keysOf(stale).pending, keysOf(leftover).value)).toBe(
      0,
    );
    expect(await shard.redis.exists(idempotencyKey(slotTag(slotOf(cold)), ids[1]))).toBe(0);
    expect(await shard.redis.hget(keysOf(moving).value, 'm')).toBe('1');
    expect(await shard.redis.zcard(keysOf(warm).pending)).toBe(2);
    // A bad TTL, or a count that does not match the keys, is refused before anything is written.
    await expect(
      scripts.ctrIncrAckMany(item(warm, randomUUID(), 1, 'o').keys, [0, 60_000, 600_000, 1, 1, 'x', 'o']),
    ).rejects.toThrow(/positive integers/);
    await expect(
      scripts.ctrIncrAckMany(item(warm, randomUUID(), 1, 'o').keys, [
        60_000,
        60_000,
        600_000,
        2,
        1,
        'x',
        'o',
      ]),
    ).rejects.toThrow(/incrementCount/);
    expect(await shard.redis.hget(keysOf(warm).value, 'v')).toBe('41');
  });

  it("every increment of a migration partial renews its marker with the partial's TTL, and writes a lost one again", async () => {
    const name = ctx.name('marker-renewed');
    const shard = ctx.shard(ownerOf(ctx, name));
    const scripts = shard.defineScripts(COUNTER_SCRIPTS);
    const keys = counterKeys(name);
    const marker = `ctrt${keys.value.slice(3)}`;
    const ttlMs = 1_500;
    const incrementPartial = async () => {
      const id = randomUUID();
      const reply = await scripts.ctrIncrAckMany(
        [idempotencyKey(slotTag(slotOf(name)), id), keys.value, keys.pending],
        [60_000, 60_000, ttlMs, 1, 1, id, 'm'],
      );
      expect(reply.increments[0]?.kind).toBe('done');
    };
    await incrementPartial(); // the first partial writes the marker
    expect(await shard.redis.exists(marker)).toBe(1);
    await sleep(900);
    await incrementPartial();
    // Renewed: without that it would have about 600 ms left, and expire before its partial.
    expect(await shard.redis.pttl(marker)).toBeGreaterThan(1_100);
    await sleep(900); // past the first write's TTL
    expect(await shard.redis.exists(marker)).toBe(1);
    // Lost (e.g. not replicated before a failover): the next increment of the partial writes it again.
    await shard.redis.del(marker);
    await incrementPartial();
    expect(await shard.redis.exists(marker)).toBe(1);
    expect(await shard.redis.hget(keys.value, 'v')).toBe('3');
    // The partial is still the first one: renewing the marker never flags it as made again.
    expect(await shard.redis.hget(keys.value, 'x')).toBeNull();
  });

  it('an increment re-sent after dropped connections is applied once (idempotent script)', async () => {
    const name = ctx.name('resend');
    const shardName = ownerOf(ctx, name);
    const shard = ctx.shard(shardName);
    const scripts = shard.defineScripts(COUNTER_SCRIPTS);
    const keys = counterKeys(name);
    const slot = slotOf(name);
    await shard.redis.hset(keys.value, 'v', 0, 'g', 'test');
    // The id of the shard client's current connection, once it is (re)connected.
    const currentClientId = async (): Promise<number> => {
      for (let attempt = 0; ; attempt += 1) {
        try {
          await shard.waitUntilReady(5_000);
          return Number(await shard.redis.client('ID'));
        } catch (err) {
          if (attempt >= 50) throw err;
          await sleep(20);
        }
      }
    };
    let clientId = await currentClientId();
    const killer = shard.redis.duplicate();
    await waitForRedisReady(killer, 5_000);
    let applied = 0;
    let replayed = 0;
    let failed = 0;
    const all: string[] = [];
    const itemKeys = (id: string) => [idempotencyKey(slotTag(slot), id), keys.value, keys.pending];
    const itemArgs = (id: string) => [1, id, 'o'];
    // One script call carries the increments of a whole batch of request ids (as the store sends them).
    const incrMany = async (ids: readonly string[]): Promise<IncrReply[]> =>
      (
        await scripts.ctrIncrAckMany(ids.flatMap(itemKeys), [
          60_000,
          60_000,
          600_000,
          ids.length,
          ...ids.flatMap(itemArgs),
        ])
      ).increments;
    const done = (reply: IncrReply | undefined) => {
      if (reply?.kind !== 'done') throw new Error(`unexpected reply ${JSON.stringify(reply)}`);
      parseIncrResult(reply.result);
      return reply;
    };
    // Waves of batches with the connection killed while they are in flight: ioredis re-sends the
    // unanswered ones on the new connection, although the server may have run them already.
    for (let wave = 0; wave < 20; wave += 1) {
      const batches = Array.from({ length: 40 }, () => Array.from({ length: 25 }, () => randomUUID()));
      all.push(...batches.flat());
      const calls = batches.map((ids) =>
        incrMany(ids).then(
          (replies) => {
            expect(replies).toHaveLength(ids.length);
            for (const reply of replies) {
              if (done(reply).applied) applied += 1;
              else replayed += 1;
            }
          },
          () => (failed += ids.length),
        ),
      );
      await sleep(wave % 3);
      // From another connection, so the kill is not queued behind the batches it should cut.
      await killer.client('KILL', 'ID', String(clientId)).catch(() => undefined);
      await Promise.all(calls);
      clientId = await currentClientId();
    }
    console.info(
      `resend test: ${all.length} ids, applied ${applied}, replayed (re-sent, already applied) ${replayed}, failed ${failed}`,
    );
    // Now settle every id once more (a client retry): an id already applied returns applied=false,
    // one that never ran is applied now. Exactly-once means the value is exactly the number of ids.
    let ranBeforeFailure = 0;
    const settleMany = async (ids: readonly string[]) => {
      for (let attempt = 0; ; attempt += 1) {
        try {
          return (await incrMany(ids)).map(done);
        } catch (err) {
          if (attempt >= 20) throw err;
          await shard.waitUntilReady(5_000);
          await sleep(20);
        }
      }
    };
    const settle = async (id: string) => (await settleMany([id]))[0]!;
    for (let i = 0; i < all.length; i += 200)
      for (const reply of await settleMany(all.slice(i, i + 200))) if (!reply.applied) ranBeforeFailure += 1;
    console.info(
      `${ranBeforeFailure - applied - replayed} of ${failed} calls that failed on the client had run on the server`,
    );
    expect(Number(await shard.redis.hget(keys.value, 'v'))).toBe(all.length);
    // The cuts hit increments in flight: some ran on the server without their first reply arriving.
    expect(ranBeforeFailure - applied).toBeGreaterThan(0);
    // A re-send is the same script with the same request id arriving again (also concurrently on
    // two connections, e.g. after a reconnect raced a slow reply): applied exactly once.
    const dup = randomUUID();
    const other = shard.redis.duplicate();
    await waitForRedisReady(other, 5_000);
    other.defineCommand('ctrIncrDup', { lua: COUNTER_SCRIPTS.ctrIncrAckMany.lua });
    const dupKeys = itemKeys(dup);
    const dupArgs = [60_000, 60_000, 600_000, 1, ...itemArgs(dup)];
    const replies = await Promise.all([
      ...Array.from({ length: 25 }, () => settle(dup)),
      ...Array.from({ length: 25 }, () =>
        (other as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)['ctrIncrDup']!(
          dupKeys.length,
          ...dupKeys,
          ...dupArgs,
        ),
      ),
    ]);
    const appliedCount = replies.filter((r) =>
      // The raw reply is {increments, acks}; an increment's reply is {1 | 0, result}.
      Array.isArray(r) ? (r as unknown[][][])[0]?.[0]?.[0] === 1 : (r as { applied: boolean }).applied,
    ).length;
    expect(appliedCount).toBe(1);
    expect(Number(await shard.redis.hget(keys.value, 'v'))).toBe(all.length + 1);
    await other.quit();
    await killer.quit();
  }, 60_000);
});
