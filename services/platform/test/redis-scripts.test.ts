/**
 * Lua scripts through an auto-pipelining client: every call must travel as EVALSHA (a digest),
 * with EVAL only when the server does not know the script. ioredis' defineCommand sends the
 * whole source on every auto-pipelined call; this proves the platform's invokers do not.
 */
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { createRedisClient, defineScripts, waitForRedisReady } from '../src/index.js';
import { currentRedisMaster } from '../../../hack/testing/stack-control.js';

const logger = pino({ level: 'silent' });
const KEY = `hs-test-scripts-${randomBytes(4).toString('hex')}`;
// A long body: the cost of resending it would be visible on the wire and in Redis.
const LUA = `-- ${'padding '.repeat(200)}\nreturn redis.call('INCRBY', KEYS[1], ARGV[1])`;

function callsOf(info: string, command: string): number {
  return Number(new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(info)?.[1] ?? '0');
}

describe('defineScripts over auto-pipelining (real Redis)', () => {
  let client: Redis;
  let admin: Redis;

  beforeAll(async () => {
    const master = await currentRedisMaster('shard-1');
    client = createRedisClient({ host: master.host, port: master.port, logger });
    admin = createRedisClient({ host: master.host, port: master.port, logger });
    await waitForRedisReady(client, 5_000);
    await waitForRedisReady(admin, 5_000);
  });
  afterAll(async () => {
    await admin.del(KEY);
    client.disconnect();
    admin.disconnect();
  });

  it('sends EVALSHA, falling back to EVAL once when the script is unknown', async () => {
    const { hsTestPaddedIncr } = defineScripts(client, {
      hsTestPaddedIncr: { lua: LUA, numberOfKeys: 1, parse: (reply) => Number(reply) },
    });
    await admin.script('FLUSH');
    const stats = async () => {
      const info = await admin.info('commandstats');
      return { eval: callsOf(info, 'eval'), evalsha: callsOf(info, 'evalsha') };
    };

    // Unknown to the server: one EVALSHA answered NOSCRIPT, then one EVAL that also caches it.
    const flushed = await stats();
    expect(await hsTestPaddedIncr([KEY], [1])).toBe(1);
    const loaded = await stats();
    expect(loaded.evalsha - flushed.evalsha).toBe(1);
    expect(loaded.eval - flushed.eval).toBe(1);

    // Known: 500 concurrent, auto-pipelined calls are 500 EVALSHAs and not a single EVAL.
    const results = await Promise.all(Array.from({ length: 500 }, () => hsTestPaddedIncr([KEY], [1])));
    const after = await stats();
    expect(Math.max(...results)).toBe(501);
    expect(Number(await admin.get(KEY))).toBe(501);
    expect(after.evalsha - loaded.evalsha).toBe(500);
    expect(after.eval - loaded.eval).toBe(0);
  });
});
