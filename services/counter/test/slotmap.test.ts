import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { moveKeys } from '../../../operators/countershard/src/migration/keys.js';
import { moveMigratingSlots } from '../../../operators/countershard/src/migration/mover.js';
import { TAKE_COUNTER } from '../../../operators/countershard/src/migration/scripts.js';
import { Throttle } from '../../../operators/countershard/src/migration/throttle.js';
import { counterKeys, slotOf } from '../src/keys.js';
import type { SlotMapDocument } from '../src/slot-map.js';
import { ACKS_KEY } from '../src/slot-map-source.js';
import { createTestContext, ownerOf, sleep, waitFor, type Child, type TestContext } from './helpers.js';

let ctx: TestContext;
let writer: Child;

beforeAll(async () => {
  ctx = await createTestContext('slotmap');
  writer = await ctx.startWriter();
});
afterAll(async () => {
  await ctx?.close();
});

const shards = { 'shard-0': { masterName: 'shard-0' }, 'shard-1': { masterName: 'shard-1' } };

async function metric(name: string): Promise<number> {
  const line = (await ctx.registry.metrics()).split('\n').find((l) => l.startsWith(`${name} `));
  return Number(line?.split(' ')[1] ?? NaN);
}

/** Moves a migrating slot's counter from old to new exactly once, as the operator will. */
/**
 * Moves a counter as the operator's mover does. `filledSince`: when the old shard started to
 * migrate (its clock); a hash a warm filled after that (`w`) may hold, from its MySQL snapshot,
 * deltas the new partial holds too, so it is not added (the new shard is left cold).
 */
async function moveCounter(name: string, from: string, to: string, filledSince: number): Promise<void> {
  const keys = counterKeys(name);
  const old = ctx.shard(from).redis;
  // Take the old hash atomically (read + delete); from now on reads of the name go to MySQL.
  const taken = (await old.eval(
    `local h = redis.call('HGETALL', KEYS[1]) redis.call('DEL', KEYS[1], KEYS[2]) return h`,
    2,
    keys.value,
    keys.pending,
  )) as string[];
  const fields = new Map<string, string>();
  for (let i = 0; i + 1 < taken.length; i += 2) fields.set(taken[i]!, taken[i + 1]!);
  const target = ctx.shard(to).redis;
  const filled = fields.get('w');
  const trusted = filled === undefined || Number(filled) < filledSince;
  if (fields.has('v') && fields.get('m') !== '1' && trusted) {
    // Old value + the deltas written to the new shard meanwhile = the whole value; no longer partial.
    await target.eval(
      `redis.call('HINCRBY', KEYS[1], 'v', ARGV[1]) redis.call('HDEL', KEYS[1], 'm')
       if not redis.call('HGET', KEYS[1], 'g') then redis.call('HSET', KEYS[1], 'g', ARGV[2]) end return 1`,
      1,
      keys.value,
      fields.get('v')!,
      fields.get('g') ?? 'moved',
    );
  } else {
    // The old shard had nothing trustworthy: the new partial is cold, re-warmed from MySQL.
    await target.del(keys.value, keys.pending);
  }
}

describe('slot map routing', () => {
  it('routes names to the shard the published map names, and acknowledges the epoch on every shard', async () => {
    const doc: SlotMapDocument = {
      epoch: 1,
      ranges: [
        { from: 0, to: 4095, shard: 'shard-1' },
        { from: 4096, to: 12287, shard: 'shard-0' },
        { from: 12288, to: 16383, shard: 'shard-1' },
      ],
      shards,
      migrating: [],
    };
    await ctx.publishMap(doc);
    const auth = await ctx.auth();
    const names = Array.from({ length: 60 }, (_, i) => ctx.name(`r${i}`));
    for (const name of names) {
      const res = await ctx.app.inject({
        method: 'POST',
        url: `/v1/counters/${name}/increment`,
        headers: auth,
        payload: { delta: 3 },
      });
      expect(res.statusCode).toBe(200);
    }
    for (const name of names) {
      const slot = slotOf(name);
      const owner = slot < 4096 || slot >= 12288 ? 'shard-1' : 'shard-0';
      expect(ownerOf(ctx, name)).toBe(owner);
      expect(await ctx.redisValue(name, owner)).toBe(3);
      expect(await ctx.redisValue(name, owner === 'shard-0' ? 'shard-1' : 'shard-0')).toBeNull();
    }
    expect(new Set(names.map((n) => ownerOf(ctx, n))).size).toBe(2);
    for (const shard of ctx.shards) {
      await waitFor(
        async () => (await shard.redis.hget(ACKS_KEY, ctx.slotMaps.podId))?.startsWith('1:') ?? false,
        5_000,
        `epoch 1 acknowledged on ${shard.shard}`,
      );
    }
  });

  it('keeps the last good map when the file turns invalid, and counts the failure', async () => {
    const before = await metric('hyperscale_counter_slotmap_reload_failures_total');
    await expect(
      ctx.publishMap({ epoch: 5, ranges: [{ from: 0, to: 10, shard: 'shard-0' }], shards, migrating: [] }),
    ).rejects.toThrow(/not applied/);
    expect(ctx.slotMaps.current()?.epoch).toBe(1);
    expect(await metric('hyperscale_counter_slotmap_reload_failures_total')).toBe(before + 1);
    const name = ctx.name('still-served');
    const res = await ctx.app.inject({
      method: 'POST',
      url: `/v1/counters/${name}/increment`,
      headers: await ctx.auth(),
    });
    expect(res.statusCode).toBe(200);
  });
});

describe('migration', () => {
  it('moves slots 0-4095 from shard-1 to shard-0 while increments run; totals exact', async () => {
    await ctx.publishMap({
      epoch: 6,
      ranges: [
        { from: 0, to: 4095, shard: 'shard-1' },
        { from: 4096, to: 12287, shard: 'shard-0' },
        { from: 12288, to: 16383, shard: 'shard-1' },
      ],
      shards,
      migrating: [],
    });
    const auth = await ctx.auth();
    const names = Array.from({ length: 40 }, (_, i) => ctx.name(`m${i}`));
    const moving = names.filter((n) => slotOf(n) < 4096);
    expect(moving.length).toBeGreaterThan(3);
    const acked = new Map(names.map((n) => [n, 0]));
    // Warm half of the moving names before the migration; the others stay cold on the old shard.
    for (const name of names.filter((_, i) => i % 2 === 0)) {
      await ctx.app.inject({
        method: 'POST',
        url: `/v1/counters/${name}/increment`,
        headers: auth,
        payload: { delta: 10 },
      });
      acked.set(name, 10);
    }
    let running = true;
    const errors: string[] = [];
    const load = Promise.all(
      Array.from({ length: 20 }, async (_, c) => {
        for (let i = 0; running; i += 1) {
          const name = names[(c * 7 + i) % names.length]!;
          const res = await ctx.app.inject({
            method: 'POST',
            url: `/v1/counters/${name}/increment`,
            headers: auth,
          });
          if (res.statusCode === 200) acked.set(name, (acked.get(name) ?? 0) + 1);
          else errors.push(`${res.statusCode} ${res.body}`);
        }
      }),
    );
    await sleep(300);
    // The old shard's clock before any pod sees the migrating map (the operator records it too).
    const [seconds, micros] = await ctx.shard('shard-1').redis.time();
    const migrationStarted = Number(seconds) * 1_000 + Math.floor(Number(micros) / 1_000);
    const migrating: SlotMapDocument = {
      epoch: 7,
      ranges: [
        { from: 0, to: 12287, shard: 'shard-0' },
        { from: 12288, to: 16383, shard: 'shard-1' },
      ],
      shards,
      migrating: [{ from: 0, to: 4095, fromShard: 'shard-1', toShard: 'shard-0' }],
    };
    await ctx.publishMap(migrating);
    await sleep(400);
    // Reads during the migration sum old + new (or come from MySQL): never below what was acknowledged.
    for (const name of moving) {
      const floor = acked.get(name) ?? 0;
      const res = await ctx.app.inject({ method: 'GET', url: `/v1/counters/${name}`, headers: auth });
      expect(res.json<{ value: number }>().value).toBeGreaterThanOrEqual(floor);
    }
    for (const name of moving) await moveCounter(name, 'shard-1', 'shard-0', migrationStarted);
    await sleep(300);
    await ctx.publishMap({ ...migrating, epoch: 8, migrating: [] });
    await sleep(300);
    running = false;
    await load;
    expect(errors).toEqual([]);
    console.info(
      `migration: ${[...acked.values()].reduce((a, b) => a + b, 0)} increments acknowledged, ${moving.length} names moved`,
    );
    await ctx.waitDrained();
    for (const name of names) {
      const expected = acked.get(name) ?? 0;
      expect(await ctx.mysqlValue(name), name).toBe(expected);
      const res = await ctx.app.inject({ method: 'GET', url: `/v1/counters/${name}`, headers: auth });
      expect(res.json<{ value: number }>().value, name).toBe(expected);
    }
    for (const name of moving) {
      expect(await ctx.redisValue(name, 'shard-0')).toBe(acked.get(name));
      expect(await ctx.redisValue(name, 'shard-1')).toBeNull();
    }
  }, 120_000);
});

describe('a warm racing the start of a migration', () => {
  it('never fills the old shard once the slot migrates, even when the warm began before', async () => {
    await ctx.publishMap({
      epoch: 100,
      ranges: [
        { from: 0, to: 8191, shard: 'shard-1' },
        { from: 8192, to: 16383, shard: 'shard-0' },
      ],
      shards,
      migrating: [],
    });
    const auth = await ctx.auth();
    const name = Array.from({ length: 50 }, (_, i) => ctx.name(`race${i}`)).find((n) => slotOf(n) < 8192)!;
    const keys = counterKeys(name);
    const increment = () =>
      ctx.app.inject({ method: 'POST', url: `/v1/counters/${name}/increment`, headers: auth });
    expect((await increment()).statusCode).toBe(200);
    await ctx.waitDrained();
    // With the writer stopped, a delta stays in Kafka only: the next warm's barrier has to wait.
    await writer.stop();
    expect((await increment()).statusCode).toBe(200);
    await ctx.shard('shard-1').redis.del(keys.value, keys.pending);
    const movedBefore = (await metric('hyperscale_counter_warms_total{outcome="moved"}')) || 0;
    const racing = increment(); // cold → warm → waiting at the writer barrier
    await sleep(300);
    await ctx.publishMap({
      epoch: 101,
      ranges: [{ from: 0, to: 16383, shard: 'shard-0' }],
      shards,
      migrating: [{ from: 0, to: 8191, fromShard: 'shard-1', toShard: 'shard-0' }],
    });
    const res = await racing;
    expect(res.statusCode, res.body).toBe(200);
    // Filled there, its snapshot could hold deltas pods already wrote to the new shard's partial,
    // which the mover would then add a second time.
    expect(await ctx.shard('shard-1').redis.exists(keys.value)).toBe(0);
    expect(await metric('hyperscale_counter_warms_total{outcome="moved"}')).toBe(movedBefore + 1);

    await ctx.publishMap({
      epoch: 102,
      ranges: [{ from: 0, to: 16383, shard: 'shard-0' }],
      shards,
      migrating: [],
    });
    writer = await ctx.startWriter();
    await ctx.waitDrained();
    expect(await ctx.mysqlValue(name)).toBe(3);
    const read = await ctx.app.inject({ method: 'GET', url: `/v1/counters/${name}`, headers: auth });
    expect(read.json<{ value: number }>().value).toBe(3);
  }, 60_000);
});

describe('a partial left from a finished migration', () => {
  it('is re-warmed by a read, not only by the next increment', async () => {
    // Map of the test above (epoch 102, every slot on shard-0), or published here when run alone.
    if ((ctx.slotMaps.current()?.epoch ?? 0) < 102)
      await ctx.publishMap({
        epoch: 102,
        ranges: [{ from: 0, to: 16383, shard: 'shard-0' }],
        shards,
        migrating: [],
      });
    const auth = await ctx.auth();
    const name = ctx.name('leftover');
    const keys = counterKeys(name);
    for (let i = 0; i < 3; i += 1) {
      const res = await ctx.app.inject({
        method: 'POST',
        url: `/v1/counters/${name}/increment`,
        headers: auth,
        payload: { delta: 5 },
      });
      expect(res.statusCode).toBe(200);
    }
    await ctx.waitDrained();
    // What a pod still on the migrating map leaves after the move: deltas of its own only, m = 1.
    await ctx.shard('shard-0').redis.del(keys.value, keys.pending);
    await ctx.shard('shard-0').redis.hset(keys.value, { v: 2, g: 'late-partial', m: '1' });
    const read = await ctx.app.inject({ method: 'GET', url: `/v1/counters/${name}`, headers: auth });
    expect(read.json<{ value: number }>().value).toBe(15);
    const hash = await ctx.shard('shard-0').redis.hgetall(keys.value);
    expect(hash['v']).toBe('15');
    expect(hash['m']).toBeUndefined();
  });
});

describe('a migration partial deleted before the mover adds the old value', () => {
  it('leaves the counter cold, so Redis never answers without deltas MySQL has', async () => {
    const epoch = Math.max(ctx.slotMaps.current()?.epoch ?? 0, 102) + 1;
    const whole = (shard: string) => [{ from: 0, to: 16383, shard }];
    await ctx.publishMap({ epoch, ranges: whole('shard-1'), shards, migrating: [] });
    const auth = await ctx.auth();
    const increment = async (name: string) => {
      const res = await ctx.app.inject({
        method: 'POST',
        url: `/v1/counters/${name}/increment`,
        headers: auth,
      });
      expect(res.statusCode, res.body).toBe(200);
    };
    const read = async (name: string) =>
      (await ctx.app.inject({ method: 'GET', url: `/v1/counters/${name}`, headers: auth })).json<{
        value: number;
      }>().value;
    // Two names: the first gets a delta again after its partial is deleted, the second does not.
    const [again, gone, unmoved] = [ctx.name('lost-again'), ctx.name('lost-gone'), ctx.name('lost-unmoved')];
    for (const name of [again, gone, unmoved]) for (let i = 0; i < 5; i += 1) await increment(name);
    await ctx.waitDrained();

    const migrating = [{ from: 0, to: 16383, fromShard: 'shard-1', toShard: 'shard-0' }];
    await ctx.publishMap({ epoch: epoch + 1, ranges: whole('shard-0'), shards, migrating });
    for (const name of [again, gone, unmoved]) for (let i = 0; i < 2; i += 1) await increment(name);
    const old = ctx.shard('shard-1').redis;
    const next = ctx.shard('shard-0').redis;
    for (const name of [again, gone]) {
      const keys = counterKeys(name);
      // The operator's mover takes the old hash, then dies before adding it on the new shard.
      const move = moveKeys(slotOf(name), randomBytes(8).toString('hex'));
      const taken = (await old.eval(
        TAKE_COUNTER,
        5,
        keys.value,
        keys.pending,
        move.record,
        move.value,
        move.pending,
        keys.value,
      )) as unknown[];
      expect(taken[0]).toBe(1);
      // Meanwhile a pod deletes the new shard's partial, as the repair of a dirty name does (a
      // Redis error on an ack) and as an ack's generation check or an expired entry do.
      expect(await next.del(keys.value, keys.pending)).toBeGreaterThanOrEqual(1);
    }
    await increment(again); // a new partial, without the two deltas before
    expect(await read(again)).toBe(8);
    expect(await read(gone)).toBe(7);
    // Not taken yet, partial deleted: old + new would read 5; the marker sends the read to MySQL.
    await next.del(counterKeys(unmoved).value, counterKeys(unmoved).pending);
    expect(await read(unmoved)).toBe(7);

    // The operator's next pass finishes the two moves from their records.
    const report = await moveMigratingSlots(
      [again, gone, unmoved].map((name) => ({ ...migrating[0]!, from: slotOf(name), to: slotOf(name) })),
      {
        clients: new Map([
          ['shard-0', next],
          ['shard-1', old],
        ]),
        throttle: new Throttle(100_000),
        signal: new AbortController().signal,
        logger: pino({ level: 'silent' }),
      },
    );
    await ctx.publishMap({ epoch: epoch + 2, ranges: whole('shard-0'), shards, migrating: [] });
    await ctx.waitDrained();
    for (const [name, total] of [
      [again, 8],
      [gone, 7],
      [unmoved, 7],
    ] as const) {
      expect(await ctx.mysqlValue(name), name).toBe(total);
      expect(await read(name), name).toBe(total);
      expect(await ctx.redisValue(name, 'shard-0'), name).toBe(total);
    }
    // Because the mover left all three cold (re-warmed by the reads above) instead of adding 5.
    expect(report.resumed).toBe(2);
    expect(report.countersCold).toBe(3);
  }, 60_000);
});
