/**
 * The post-ack script records the post's newest acknowledged Kafka position (real Redis): acks
 * finishing out of order never move it back, offsets compare exactly (no float rounding, "10" >
 * "9"), a new partition replaces the old, and invalidating the post's keys leaves it in place.
 */
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { createRedisClient, defineScripts, waitForRedisReady } from '@hyperscale/platform';
import { currentRedisMaster } from '../../../hack/testing/stack-control.js';
import { ackedPositionKey, postKeys } from '../src/keys.js';
import { LIKE_SCRIPTS } from '../src/scripts.js';

const post = `acked-${randomBytes(4).toString('hex')}`;
const keys = postKeys(post);
const allKeys = [keys.users, keys.count, keys.gen, keys.pending, ackedPositionKey(post)];
let redis: Redis;
let checkGen: (gen: string, partition: string, offset: string) => Promise<boolean>;

beforeAll(async () => {
  const master = await currentRedisMaster('shard-0');
  redis = createRedisClient({ host: master.host, port: master.port, logger: pino({ level: 'silent' }) });
  await waitForRedisReady(redis, 5_000);
  const { likeCheckGen } = defineScripts(redis, LIKE_SCRIPTS);
  checkGen = (gen, partition, offset) => likeCheckGen(allKeys, [gen, 'event', partition, offset, '60000']);
});
afterAll(async () => {
  await redis.del(...allKeys);
  redis.disconnect();
});

describe('acked position of a post', () => {
  it('keeps the newest position whatever order the acks finish in', async () => {
    await redis.set(keys.gen, 'g1');
    await redis.set(keys.count, '0');
    expect(await checkGen('g1', '0', '9')).toBe(true);
    expect(await redis.get(ackedPositionKey(post))).toBe('0:9');
    expect(await checkGen('g1', '0', '10')).toBe(true); // longer: newer, though "10" < "9" as text
    expect(await checkGen('g1', '0', '8')).toBe(true); // an older ack finishing late
    expect(await redis.get(ackedPositionKey(post))).toBe('0:10');
    await checkGen('g1', '0', '9007199254740993');
    await checkGen('g1', '0', '9007199254740992'); // equal as doubles, older as integers
    expect(await redis.get(ackedPositionKey(post))).toBe('0:9007199254740993');
    const ttl = await redis.pttl(ackedPositionKey(post));
    expect(ttl).toBeGreaterThan(50_000);
    expect(ttl).toBeLessThanOrEqual(60_000);
  });

  it('takes a new partition as is, ignores an ack without a position', async () => {
    await checkGen('g1', '1', '2');
    expect(await redis.get(ackedPositionKey(post))).toBe('1:2');
    await checkGen('g1', '', '');
    expect(await redis.get(ackedPositionKey(post))).toBe('1:2');
  });

  it('survives the invalidation of the post (another generation)', async () => {
    expect(await checkGen('other-gen', '1', '3')).toBe(false);
    expect(await redis.exists(keys.gen, keys.count)).toBe(0);
    expect(await redis.get(ackedPositionKey(post))).toBe('1:3');
  });
});
