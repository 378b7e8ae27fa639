/**
 * The data mover against the real Redis shard groups (shard-0 → shard-1): counters move exactly
 * once even when a pass dies after any step, set-like keys are unioned, stale counters are left
 * cold, and clean-up removes only what was moved.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { createRedisClient, waitForRedisReady } from '@hyperscale/platform';
import { moveKeys, partialMarker } from '../src/migration/keys.js';
import { cleanupMovedSlots, moveMigratingSlots } from '../src/migration/mover.js';
import { TAKE_COUNTER, MERGE_COUNTER } from '../src/migration/scripts.js';
import { Throttle } from '../src/migration/throttle.js';
import {
  currentRedisMaster,
  freezeServer,
  resumeFrozenServers,
  resumeServer,
} from '../../../hack/testing/stack-control.js';
import { SENTINELS } from './helpers.js';

const logger = pino({ level: 'silent' });
const run = randomBytes(4).toString('hex');
// Slots of this file: far apart from each other, moved shard-0 → shard-1.
const SLOT_A = 1_000 + (parseInt(run.slice(0, 4), 16) % 4_000);
const SLOT_B = SLOT_A + 1;
const migrating = [{ from: SLOT_A, to: SLOT_B, fromShard: 'shard-0', toShard: 'shard-1' }];

describe('mover (real Redis shard groups)', () => {
  let old: Redis;
  let next: Redis;
  let clients: Map<string, Redis>;
  const ctr = (slot: number, name: string) => `ctr:{${slot}}:m${run}-${name}`;
  const options = () => ({
    clients,
    throttle: new Throttle(100_000),
    signal: new AbortController().signal,
    logger,
  });

  beforeAll(async () => {
    old = createRedisClient({ sentinels: SENTINELS, masterName: 'shard-0', commandTimeoutMs: 5_000 });
    next = createRedisClient({ sentinels: SENTINELS, masterName: 'shard-1', commandTimeoutMs: 5_000 });
    await Promise.all([waitForRedisReady(old, 10_000), waitForRedisReady(next, 10_000)]);
    clients = new Map([
      ['shard-0', old],
      ['shard-1', next],
    ]);
  });

  afterAll(async () => {
    await resumeFrozenServers();
    for (const redis of [old, next]) {
      for (const pattern of [`*{${SLOT_A}}*`, `*{${SLOT_B}}*`]) {
        let cursor = '0';
        do {
          const [c, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
          cursor = c;
          const mine = keys.filter((k) => k.includes(run) || k.startsWith('mv'));
          if (mine.length > 0) await redis.del(...mine);
        } while (cursor !== '0');
      }
      await redis.quit();
    }
  });

  it('adds the old value to the partial written during the migration, once, keeping the partial generation', async () => {
    const key = ctr(SLOT_A, 'sum');
    await old.hset(key, { v: 10, g: 'old-gen' });
    await old.pexpire(key, 600_000);
    await next.hset(key, { v: 3, g: 'partial-gen', m: '1' });
    const report = await moveMigratingSlots(migrating, options());
    expect(report.countersMoved).toBeGreaterThanOrEqual(1);
    expect(await next.hgetall(key)).toEqual({ v: '13', g: 'partial-gen' });
    expect(await old.exists(key)).toBe(0);
    // A second pass changes nothing.
    await moveMigratingSlots(migrating, options());
    expect(await next.hget(key, 'v')).toBe('13');
    expect(await next.pttl(key)).toBeGreaterThan(500_000);
  });

  it("leaves a counter cold when the pods' marker says its partial lost deltas, and drops the marker", async () => {
    const marker = (key: string) => partialMarker(key);
    // Partial deleted before the merge (a pod's repair, an ack's generation check): marker only.
    const deleted = ctr(SLOT_A, 'partial-deleted');
    await old.hset(deleted, { v: 10, g: 'old-gen' });
    await next.set(marker(deleted), 'first-partial');
    // Partial made again after one was deleted: flagged x.
    const remade = ctr(SLOT_B, 'partial-remade');
    await old.hset(remade, { v: 10, g: 'old-gen' });
    await next.set(marker(remade), 'first-partial');
    await next.hset(remade, { v: 1, g: 'second-partial', m: '1', x: '1' });
    // The partial the marker was written with, intact: the old value is added as before.
    const intact = ctr(SLOT_A, 'partial-intact');
    await old.hset(intact, { v: 10, g: 'old-gen' });
    await next.set(marker(intact), 'p');
    await next.hset(intact, { v: 3, g: 'p', m: '1' });

    const report = await moveMigratingSlots(migrating, options());
    expect(report.countersCold).toBeGreaterThanOrEqual(2);
    expect(await next.exists(deleted, remade)).toBe(0);
    expect(await next.hgetall(intact)).toEqual({ v: '13', g: 'p' });
    expect(await next.exists(marker(deleted), marker(remade), marker(intact))).toBe(0);
    expect(await old.exists(deleted, remade, intact)).toBe(0);
  });

  it('moves a counter without partial as it was, with its pending entries', async () => {
    const key = ctr(SLOT_B, 'plain');
    const deadline = Date.now() + 120_000;
    await old.hset(key, { v: 7, g: 'g1' });
    await old.zadd(`${key}:p`, deadline, 'event-1');
    await moveMigratingSlots(migrating, options());
    expect(await next.hgetall(key)).toEqual({ v: '7', g: 'g1' });
    expect(await next.zscore(`${key}:p`, 'event-1')).toBe(String(deadline));
    expect(await old.exists(key, `${key}:p`)).toBe(0);
  });

  it('finishes a pass that died after taking the hash from the old shard (exactly once)', async () => {
    const key = ctr(SLOT_A, 'crash-after-take');
    await old.hset(key, { v: 5, g: 'g' });
    await next.hset(key, { v: 2, g: 'p', m: '1' });
    const keys = moveKeys(SLOT_A, `dead${run}aa`);
    await old.eval(TAKE_COUNTER, 5, key, `${key}:p`, keys.record, keys.value, keys.pending, key);
    expect(await old.exists(key)).toBe(0);
    const report = await moveMigratingSlots(migrating, options());
    expect(report.resumed).toBeGreaterThanOrEqual(1);
    expect(await next.hgetall(key)).toEqual({ v: '7', g: 'p' });
    expect(await old.exists(keys.record, keys.value)).toBe(0);
  });

  it('does not add twice when a pass died after the add but before dropping the record', async () => {
    const key = ctr(SLOT_B, 'crash-after-merge');
    await old.hset(key, { v: 100, g: 'g' });
    await next.hset(key, { v: 1, g: 'p', m: '1' });
    const keys = moveKeys(SLOT_B, `dead${run}bb`);
    await old.eval(TAKE_COUNTER, 5, key, `${key}:p`, keys.record, keys.value, keys.pending, key);
    await next.eval(
      MERGE_COUNTER,
      4,
      key,
      `${key}:p`,
      keys.done,
      partialMarker(key),
      '100',
      'g',
      '0',
      -1,
      60_000,
    );
    expect(await next.hget(key, 'v')).toBe('101');
    const report = await moveMigratingSlots(migrating, options());
    expect(report.resumed).toBeGreaterThanOrEqual(1);
    expect(await next.hget(key, 'v')).toBe('101');
    expect(await old.exists(keys.record)).toBe(0);
  });

  it('leaves a counter cold on the new shard when the old hash was stale', async () => {
    const partial = ctr(SLOT_A, 'stale-partial');
    await old.hset(partial, { v: 9, g: 'g', m: '1' }); // a leftover partial of an earlier move
    await next.hset(partial, { v: 1, g: 'p', m: '1' });
    const expired = ctr(SLOT_A, 'stale-pending');
    await old.hset(expired, { v: 9, g: 'g' });
    await old.zadd(`${expired}:p`, Date.now() - 1_000, 'event-of-a-dead-pod');
    const full = ctr(SLOT_A, 'full-on-new');
    await old.hset(full, { v: 9, g: 'g' });
    await next.hset(full, { v: 50, g: 'leftover' }); // not written by pods during this migration
    const report = await moveMigratingSlots(migrating, options());
    expect(report.countersCold).toBeGreaterThanOrEqual(3);
    expect(await next.exists(partial, expired, full, `${expired}:p`)).toBe(0);
    expect(await old.exists(partial, expired, full)).toBe(0);
  });

  it('leaves a counter cold when a warm filled its old hash after the migration started, and adds one filled before', async () => {
    // A warm's MySQL snapshot taken after pods began writing partials may hold those deltas too:
    // adding such a hash to the partial would count them twice.
    const [seconds, micros] = await old.time();
    const started = Number(seconds) * 1_000 + Math.floor(Number(micros) / 1_000);
    const late = ctr(SLOT_A, 'filled-late');
    const early = ctr(SLOT_A, 'filled-early');
    await old.hset(late, { v: 14, g: 'warm-late', w: started + 10 });
    await next.hset(late, { v: 4, g: 'partial-late', m: '1' });
    await old.hset(early, { v: 20, g: 'warm-early', w: started - 60_000 });
    await next.hset(early, { v: 2, g: 'partial-early', m: '1' });
    const report = await moveMigratingSlots(migrating, {
      ...options(),
      migrationStarted: new Map([['shard-0', started]]),
    });
    expect(report.countersCold).toBeGreaterThanOrEqual(1);
    expect(await next.exists(late)).toBe(0);
    expect(await old.exists(late)).toBe(0);
    expect(await next.hgetall(early)).toEqual({ v: '22', g: 'partial-early' });
    // A source shard without a recorded start trusts no filled hash.
    const unknown = ctr(SLOT_B, 'filled-unknown');
    await old.hset(unknown, { v: 5, g: 'warm-unknown', w: started - 60_000 });
    await next.hset(unknown, { v: 1, g: 'partial-unknown', m: '1' });
    await moveMigratingSlots(migrating, { ...options(), migrationStarted: new Map() });
    expect(await next.exists(unknown)).toBe(0);
  });

  it('unions unique sets and HLLs, copies the marker only when the old set was warm, unions presence by latest sighting', async () => {
    const base = `uq:{${SLOT_B}}:m${run}-u`;
    await old.sadd(`${base}:s:2026-11-20`, 'a', 'b');
    await old.pfadd(`${base}:h:2026-11-20`, 'a', 'b');
    await old.set(`${base}:g:2026-11-20`, 'gen-1', 'PX', 600_000);
    await next.sadd(`${base}:s:2026-11-20`, 'c'); // dual-written during the migration
    await next.pfadd(`${base}:h:2026-11-20`, 'c');
    await old.sadd(`${base}:s:2026-11-21`, 'x'); // not warm: no marker
    const room = `pr:{${SLOT_A}}:m${run}-room`;
    await old.zadd(room, 1_000, 'u1', 5_000, 'u2');
    await next.zadd(room, 2_000, 'u1', 3_000, 'u3');

    await moveMigratingSlots(migrating, options());
    await moveMigratingSlots(migrating, options()); // idempotent
    expect((await next.smembers(`${base}:s:2026-11-20`)).sort()).toEqual(['a', 'b', 'c']);
    expect(await next.pfcount(`${base}:h:2026-11-20`)).toBe(3);
    expect(await next.get(`${base}:g:2026-11-20`)).toBe('gen-1');
    expect(await next.smembers(`${base}:s:2026-11-21`)).toEqual(['x']);
    expect(await next.exists(`${base}:g:2026-11-21`)).toBe(0);
    expect(await next.zrange(room, 0, -1, 'WITHSCORES')).toEqual(['u1', '2000', 'u3', '3000', 'u2', '5000']);
    // Set-like keys stay readable on the old shard until the clean-up after the finalized map.
    expect(await old.exists(`${base}:s:2026-11-20`, room)).toBe(2);
    const deleted = await cleanupMovedSlots([{ from: SLOT_A, to: SLOT_B, shard: 'shard-0' }], options());
    expect(deleted).toBeGreaterThanOrEqual(4);
    expect(
      await old.exists(`${base}:s:2026-11-20`, `${base}:h:2026-11-20`, `${base}:g:2026-11-20`, room),
    ).toBe(0);
    expect(await next.exists(`${base}:s:2026-11-20`, room)).toBe(2);
    // Partial markers of the moved slots go on every shard; one of another slot stays.
    const markers = [partialMarker(ctr(SLOT_A, 'cleanup')), partialMarker(ctr(SLOT_B, 'cleanup'))];
    const otherSlot = partialMarker(ctr(SLOT_B + 1, 'cleanup'));
    await Promise.all([old.set(markers[0]!, 'p'), next.set(markers[1]!, 'p'), next.set(otherSlot, 'p')]);
    await cleanupMovedSlots([{ from: SLOT_A, to: SLOT_B, shard: 'shard-0' }], options());
    expect(await old.exists(markers[0]!)).toBe(0);
    expect(await next.exists(markers[1]!, otherSlot)).toBe(1);
    expect(await next.exists(otherSlot)).toBe(1);
    await next.del(otherSlot);
  });

  it('a pass whose merges hang on a frozen new shard (and run when it resumes), then the next pass: every value moved exactly once', async () => {
    const slots = { from: 9_000 + (parseInt(run.slice(2, 6), 16) % 2_000), count: 10 };
    const range = [
      { from: slots.from, to: slots.from + slots.count - 1, fromShard: 'shard-0', toShard: 'shard-1' },
    ];
    const n = 20_000;
    const keyOf = (i: number) => `ctr:{${slots.from + (i % slots.count)}}:m${run}-frozen-${i}`;
    for (let i = 0; i < n; i += 1_000) {
      const pipeline = old.pipeline();
      for (let j = i; j < i + 1_000; j += 1)
        pipeline.hset(keyOf(j), { v: j, g: 'g' }).pexpire(keyOf(j), 600_000);
      await pipeline.exec();
    }
    // The pass's own clients give up after 300 ms, as the operator's do after their timeout.
    const impatient = new Map(
      ['shard-0', 'shard-1'].map((masterName) => [
        masterName,
        createRedisClient({ sentinels: SENTINELS, masterName, commandTimeoutMs: 300 }),
      ]),
    );
    await Promise.all([...impatient.values()].map((r) => waitForRedisReady(r, 10_000)));
    const master = await currentRedisMaster('shard-1');
    const name = `redis-${master.port}`;
    let first: unknown;
    try {
      const pass = moveMigratingSlots(range, { ...options(), clients: impatient }).then(
        (report) => report,
        (err: unknown) => err,
      );
      await new Promise((resolve) => setTimeout(resolve, 200));
      await freezeServer(name);
      try {
        // Shorter than Sentinel's down-after (1.5 s): the same master resumes.
        await new Promise((resolve) => setTimeout(resolve, 1_000));
      } finally {
        await resumeServer(name);
      }
      first = await pass;
    } finally {
      await Promise.all([...impatient.values()].map((r) => r.quit().catch(() => r.disconnect())));
    }
    // The first pass failed on the frozen shard; what it sent meanwhile ran when it resumed.
    expect(first).toBeInstanceOf(Error);
    const second = await moveMigratingSlots(range, options());
    console.info(
      `[mover] frozen new shard: first pass failed (${(first as Error).message}); the next resumed ${second.resumed} moves and moved ${second.countersMoved} more`,
    );
    const values = await next.pipeline(Array.from({ length: n }, (_, i) => ['hget', keyOf(i), 'v'])).exec();
    const wrong = (values ?? []).filter(([, v], i) => v !== String(i)).length;
    expect(wrong).toBe(0);
    let left = 0;
    for (let i = 0; i < n; i += 1_000)
      left += await old.exists(...Array.from({ length: 1_000 }, (_, j) => keyOf(i + j)));
    expect(left).toBe(0);
    // No move record is left on the old shard.
    const records: string[] = [];
    for (let slot = slots.from; slot < slots.from + slots.count; slot += 1) {
      let cursor = '0';
      do {
        const [c, keys] = await old.scan(cursor, 'MATCH', `mv*{${slot}}*`, 'COUNT', 1000);
        cursor = c;
        records.push(...keys);
      } while (cursor !== '0');
    }
    expect(records).toEqual([]);
    const cleanup = await next.pipeline(Array.from({ length: n }, (_, i) => ['del', keyOf(i)])).exec();
    expect(cleanup?.length).toBe(n);
  }, 120_000);

  it('moves 20,000 counters of a slot range with every value intact (prints the rate)', async () => {
    const slots = { from: 12_000 + (parseInt(run.slice(4, 8), 16) % 2_000), count: 20 };
    const range = [
      { from: slots.from, to: slots.from + slots.count - 1, fromShard: 'shard-0', toShard: 'shard-1' },
    ];
    const n = 20_000;
    const keyOf = (i: number) => `ctr:{${slots.from + (i % slots.count)}}:m${run}-bulk-${i}`;
    for (let i = 0; i < n; i += 1_000) {
      const pipeline = old.pipeline();
      for (let j = i; j < i + 1_000; j += 1)
        pipeline.hset(keyOf(j), { v: j, g: 'g' }).pexpire(keyOf(j), 600_000);
      await pipeline.exec();
    }
    const started = performance.now();
    const report = await moveMigratingSlots(range, options());
    const seconds = (performance.now() - started) / 1_000;
    expect(report.countersMoved).toBeGreaterThanOrEqual(n);
    const values = await next.pipeline(Array.from({ length: n }, (_, i) => ['hget', keyOf(i), 'v'])).exec();
    const wrong = (values ?? []).filter(([, v], i) => v !== String(i)).length;
    expect(wrong).toBe(0);
    expect(await old.exists(keyOf(0), keyOf(n - 1))).toBe(0);
    console.info(
      `[mover] ${report.countersMoved} counters moved in ${seconds.toFixed(2)} s: ${Math.round(report.countersMoved / seconds)} keys/s (${report.keysScanned} keys scanned)`,
    );
    const cleanup = await next.pipeline(Array.from({ length: n }, (_, i) => ['del', keyOf(i)])).exec();
    expect(cleanup?.length).toBe(n);
  }, 120_000);
});
