/**
 * Unique day sets while their slot migrates (DESIGN §3, set-like data): the old shard takes the
 * marker-checked write and answers reads, the new shard gets every acknowledged user too, without
 * the warm marker (partial). A failing new-shard write still answers 200 and keeps the new shard's
 * marker deleted while the slot moves. The mover is performed by hand (marker read first, then the
 * union of the set and HLL into the new shard, then the marker), the migration is finalized, and the
 * new shard answers the exact counts of MySQL's `unique_daily`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { slotOf } from '../src/keys.js';
import type { SlotMapDocument } from '../src/slot-map.js';
import { dayOf, uniqueKeys } from '../src/uniques-store.js';
import { createTestContext, waitFor, type TestContext } from './helpers.js';

let ctx: TestContext;

beforeAll(async () => {
  ctx = await createTestContext('uqmigrate');
  await ctx.startWriter();
});
afterAll(async () => {
  await ctx?.close();
});

const OLD = 'shard-1';
const NEW = 'shard-0';
const shards = { 'shard-0': { masterName: 'shard-0' }, 'shard-1': { masterName: 'shard-1' } };
const before: SlotMapDocument = {
  epoch: 1,
  ranges: [
    { from: 0, to: 4095, shard: OLD },
    { from: 4096, to: 12287, shard: NEW },
    { from: 12288, to: 16383, shard: OLD },
  ],
  shards,
  migrating: [],
};
const migrating: SlotMapDocument = {
  epoch: 2,
  ranges: [
    { from: 0, to: 12287, shard: NEW },
    { from: 12288, to: 16383, shard: OLD },
  ],
  shards,
  migrating: [{ from: 0, to: 4095, fromShard: OLD, toShard: NEW }],
};
const finalized: SlotMapDocument = { ...migrating, epoch: 3, migrating: [] };

/** A fixed UTC day (yesterday), so the test cannot straddle midnight. */
const DAY = dayOf(Date.now() - 86_400_000);
const AT = `${DAY}T12:00:00.000Z`;

async function event(name: string, userId: string): Promise<number> {
  const res = await ctx.app.inject({
    method: 'POST',
    url: `/v1/uniques/${name}/events`,
    headers: await ctx.auth(userId, []),
    payload: { userId, at: AT },
  });
  expect(res.statusCode, res.body).toBe(200);
  return res.statusCode;
}

async function apiCount(name: string, query = `day=${DAY}`): Promise<number> {
  const res = await ctx.app.inject({
    method: 'GET',
    url: `/v1/uniques/${name}?${query}`,
    headers: await ctx.auth('reader', []),
  });
  expect(res.statusCode, res.body).toBe(200);
  return res.json<{ count: number }>().count;
}

async function mysqlUsers(name: string): Promise<string[]> {
  const rows = await ctx.pools.primary.select<{ user_id: string }>(
    'SELECT user_id FROM unique_daily WHERE name = ? AND day = ? ORDER BY user_id',
    [name, DAY],
  );
  return rows.map((r) => r.user_id);
}

async function metric(name: string, labels: string): Promise<number> {
  const line = (await ctx.registry.metrics()).split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return Number(line?.split(' ')[1] ?? 0);
}

async function members(shard: string, name: string): Promise<string[]> {
  return (await ctx.shard(shard).redis.smembers(uniqueKeys(name, DAY).set)).sort();
}

async function hasMarker(shard: string, name: string): Promise<boolean> {
  return (await ctx.shard(shard).redis.exists(uniqueKeys(name, DAY).gen)) === 1;
}

/**
 * The operator's move of one day set, by hand: the marker is read FIRST (a marker seen before the
 * set was read vouches for that set), then the set and HLL are unioned into the new shard, then the
 * marker is copied.
 */
async function moveDaySet(name: string): Promise<void> {
  const keys = uniqueKeys(name, DAY);
  const old = ctx.shard(OLD).redis;
  const target = ctx.shard(NEW).redis;
  const marker = await old.get(keys.gen);
  const markerTtl = await old.pttl(keys.gen);
  const set = await old.smembers(keys.set);
  const hll = await old.getBuffer(keys.hll);
  if (set.length > 0) await target.sadd(keys.set, ...set);
  if (hll !== null) {
    const scratch = `${keys.hll}:moving`;
    await target.set(scratch, hll);
    await target.pfmerge(keys.hll, keys.hll, scratch);
    await target.del(scratch);
  }
  if (marker !== null) await target.set(keys.gen, marker, 'PX', markerTtl > 0 ? markerTtl : 86_400_000);
}

describe('unique sets during a slot migration', () => {
  it('writes both shards (new one partial), reads the old; after the move the new shard is exact', async () => {
    await ctx.publishMap(before);
    // Names in the migrating range 0-4095, and one outside it as a control.
    const candidates = Array.from({ length: 400 }, (_, i) => ctx.name(`uq${i}`));
    const moving = candidates.filter((n) => slotOf(n) < 4096).slice(0, 7);
    const control = candidates.find((n) => slotOf(n) >= 4096 && slotOf(n) < 12288)!;
    expect(moving).toHaveLength(7);
    const [broken, ...names] = moving as [string, ...string[]];
    const warmBefore = names.slice(0, 3);
    const expected = new Map<string, Set<string>>(moving.map((n) => [n, new Set<string>()]));
    const send = async (name: string, user: string) => {
      await event(name, user);
      expected.get(name)?.add(user);
    };

    // Before the migration: half of the names have a warm day set on the old shard.
    for (const name of warmBefore) for (let u = 0; u < 10; u += 1) await send(name, `a${u}`);
    for (const name of warmBefore) expect(await hasMarker(OLD, name)).toBe(true);

    await ctx.publishMap(migrating);
    const okBefore = await metric('hyperscale_counter_unique_migration_writes_total', 'outcome="ok"');
    // During it: new users and repeats of earlier ones, 6 names in parallel.
    const duringMigration = new Map<string, Set<string>>(names.map((n) => [n, new Set<string>()]));
    await Promise.all(
      names.map(async (name) => {
        for (let u = 0; u < 15; u += 1) {
          const user = u % 5 === 0 ? `a${u}` : `b${u}`;
          await send(name, user);
          duringMigration.get(name)!.add(user);
        }
      }),
    );
    expect(
      (await metric('hyperscale_counter_unique_migration_writes_total', 'outcome="ok"')) - okBefore,
    ).toBe(names.length * 15);

    for (const name of names) {
      const all = [...expected.get(name)!].sort();
      expect(await members(OLD, name), `old shard of ${name}`).toEqual(all);
      expect(await hasMarker(OLD, name)).toBe(true);
      // Every user sent during the migration is on the new shard too, without a marker there.
      expect(await members(NEW, name), `new shard of ${name}`).toEqual(
        [...duringMigration.get(name)!].sort(),
      );
      expect(await hasMarker(NEW, name)).toBe(false);
      expect(await ctx.shard(NEW).redis.pfcount(uniqueKeys(name, DAY).hll)).toBeGreaterThan(0);
      // Reads come from the old shard: exact, and they never warm the new shard.
      expect(await apiCount(name), name).toBe(all.length);
      expect(await hasMarker(NEW, name)).toBe(false);
    }
    // A name outside the migrating range lives on its owner only.
    await event(control, 'c1');
    expect(await members(NEW, control)).toEqual(['c1']);
    expect(await members(OLD, control)).toEqual([]);

    // The new-shard write fails (its set key holds a string: WRONGTYPE) after the mover already
    // copied a marker there: the event is still answered 200 and the marker is deleted, again after
    // the mover copies it once more while the slot still migrates.
    const brokenKeys = uniqueKeys(broken, DAY);
    const newRedis = ctx.shard(NEW).redis;
    await newRedis.set(brokenKeys.set, 'not a set');
    await newRedis.set(brokenKeys.gen, 'copied-by-the-mover', 'PX', 600_000);
    const failedBefore = await metric('hyperscale_counter_unique_migration_writes_total', 'outcome="failed"');
    await send(broken, 'x1');
    expect(
      (await metric('hyperscale_counter_unique_migration_writes_total', 'outcome="failed"')) - failedBefore,
    ).toBe(1);
    await waitFor(async () => !(await hasMarker(NEW, broken)), 3_000, 'the new marker deleted');
    await newRedis.set(brokenKeys.gen, 'copied-again', 'PX', 600_000);
    await waitFor(async () => !(await hasMarker(NEW, broken)), 3_000, 'the re-copied marker deleted');
    await newRedis.del(brokenKeys.set);
    expect(await apiCount(broken)).toBe(1);

    // The mover, by hand; then the migration is finalized and the old keys are deleted.
    const markers = new Map<string, string | null>();
    for (const name of names) markers.set(name, await ctx.shard(OLD).redis.get(uniqueKeys(name, DAY).gen));
    for (const name of moving) await moveDaySet(name);
    for (const name of names) expect(markers.get(name)).toBeTruthy();
    await ctx.publishMap(finalized);
    for (const name of moving) {
      const keys = uniqueKeys(name, DAY);
      await ctx.shard(OLD).redis.del(keys.set, keys.hll, keys.gen);
    }

    for (const name of moving) {
      const inMysql = await mysqlUsers(name);
      expect(inMysql, `unique_daily of ${name}`).toEqual([...expected.get(name)!].sort());
      expect(await apiCount(name), name).toBe(inMysql.length);
      expect(await members(NEW, name), name).toEqual(inMysql);
      const range = await apiCount(name, `from=${DAY}&to=${DAY}`);
      expect(Math.abs(range - inMysql.length), `HLL of ${name}`).toBeLessThanOrEqual(1);
      // The old shard is no longer read (a read there would have warmed it).
      expect(await hasMarker(OLD, name)).toBe(false);
    }
    // Every day set was warm on the old shard by then: the new shard kept the copied marker.
    for (const name of names)
      expect(await ctx.shard(NEW).redis.get(uniqueKeys(name, DAY).gen)).toBe(markers.get(name));
    // After the move the owner's marker-checked write takes new users.
    for (const name of names) await send(name, 'late');
    for (const name of names) expect(await apiCount(name)).toBe(expected.get(name)!.size);
    await ctx.waitDrained();
    for (const name of names) expect(await mysqlUsers(name)).toEqual([...expected.get(name)!].sort());
  });
});
