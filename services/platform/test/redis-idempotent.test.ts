/**
 * Idempotent apply against the real shard-1 master (Sentinel): a request id checked inside the
 * script makes duplicates — sequential, concurrent, re-sent by ioredis after a reconnect, or retried
 * by the caller after its connection was killed — apply exactly once. The contrast cases show the
 * hazard is real: without a request id ioredis' resend applies an in-flight INCR twice.
 */
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  RedisShardClient,
  RedisTimeoutError,
  idempotencyKey,
  idempotentScript,
  type RedisShardOptions,
  type ScriptInvokers,
} from '../src/index.js';

const SENTINELS = [26379, 26380, 26381].map((port) => ({ host: '127.0.0.1', port }));
const TAG = `hs-test-idem-${randomBytes(4).toString('hex')}`;
const TTL_MS = 60_000;
const logger = pino({ level: process.env['TEST_LOG_LEVEL'] ?? 'silent' });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Busy-waits `ARGV[3]` ms inside the script, so a test can act while the script is in flight. */
const SPIN = `local spin_us = tonumber(ARGV[3]) * 1000
local t0 = redis.call('TIME')
local start = tonumber(t0[1]) * 1000000 + tonumber(t0[2])
while true do
  local t = redis.call('TIME')
  if tonumber(t[1]) * 1000000 + tonumber(t[2]) - start >= spin_us then break end
end`;

const SCRIPTS = {
  hsTestIncrOnce: idempotentScript("return redis.call('INCRBY', KEYS[2], ARGV[2])", 1),
  hsTestSlowIncrOnce: idempotentScript(`${SPIN}\nreturn redis.call('INCRBY', KEYS[2], ARGV[2])`, 1),
  // The same change WITHOUT a request id (KEYS[1] data key, ARGV[1] delta, ARGV[2] spin ms).
  hsTestSlowIncrPlain: {
    lua: `${SPIN.replaceAll('ARGV[3]', 'ARGV[2]')}\nreturn redis.call('INCRBY', KEYS[1], ARGV[1])`,
    numberOfKeys: 1,
    parse: (reply: unknown) => Number(reply),
  },
};

function shard(extra: Partial<RedisShardOptions> = {}) {
  return new RedisShardClient(
    {
      shard: 'shard-1',
      sentinels: SENTINELS,
      masterName: 'shard-1',
      commandTimeoutMs: 2_000,
      connectionName: 'hs-test-idempotent',
      ...extra,
    } as RedisShardOptions,
    { logger, registry: new Registry() },
  );
}

/**
 * Drops the TCP connection abruptly, as a network failure would. (`redis.disconnect(true)` only
 * half-closes the socket: the server's reply to an in-flight command still arrives and is read.)
 */
function dropConnection(c: RedisShardClient): void {
  c.redis.stream.destroy();
}

let counterSeq = 0;
const freshCounter = () => `ctr:{${TAG}}:${++counterSeq}`;
let requestSeq = 0;
const freshRequest = () => idempotencyKey(TAG, `req-${++requestSeq}`);

describe('idempotent scripts on the real shard-1 master', () => {
  let client: RedisShardClient;
  let scripts: ScriptInvokers<typeof SCRIPTS>;

  beforeAll(async () => {
    client = shard();
    await client.waitUntilReady(10_000);
    scripts = client.defineScripts(SCRIPTS);
  });

  beforeEach(async () => {
    await client.waitUntilReady(10_000); // a previous test may have dropped the connection
  });

  afterAll(async () => {
    if (client) {
      const keys: string[] = [];
      for (const pattern of [`ctr:{${TAG}}:*`, `idem:{${TAG}}:*`]) {
        let cursor = '0';
        do {
          const [next, batch] = await client.redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
          cursor = next;
          keys.push(...batch);
        } while (cursor !== '0');
      }
      if (keys.length > 0) await client.redis.del(...keys);
      await client.close();
    }
  });

  it('applies the same request id once when called twice, returning the first result', async () => {
    const counter = freshCounter();
    const request = freshRequest();
    const first = await scripts.hsTestIncrOnce([request, counter], [TTL_MS, 5]);
    const second = await scripts.hsTestIncrOnce([request, counter], [TTL_MS, 5]);
    expect(first).toEqual({ applied: true, result: '5' });
    expect(second).toEqual({ applied: false, result: '5' });
    expect(await client.redis.get(counter)).toBe('5');
    const ttl = await client.redis.pttl(request);
    expect(ttl).toBeGreaterThan(TTL_MS - 5_000);
    expect(ttl).toBeLessThanOrEqual(TTL_MS);

    const other = await scripts.hsTestIncrOnce([freshRequest(), counter], [TTL_MS, 5]);
    expect(other).toEqual({ applied: true, result: '10' }); // a different request id applies
  });

  it('applies exactly once under 50 concurrent duplicates', async () => {
    const counter = freshCounter();
    const request = freshRequest();
    const results = await Promise.all(
      Array.from({ length: 50 }, () => scripts.hsTestIncrOnce([request, counter], [TTL_MS, 3])),
    );
    expect(results.filter((r) => r.applied)).toHaveLength(1);
    expect(new Set(results.map((r) => r.result))).toEqual(new Set(['3']));
    expect(await client.redis.get(counter)).toBe('3');
  });

  it('applies once when ioredis re-sends the in-flight script after a forced reconnect', async () => {
    const counter = freshCounter();
    const request = freshRequest();
    const pending = scripts.hsTestSlowIncrOnce([request, counter], [TTL_MS, 7, 400]);
    await sleep(120); // the script is now running on the server
    dropConnection(client); // before the reply arrives; ioredis reconnects and re-sends
    const outcome = await pending;
    // The server ran the script twice (the resend found the record), the change happened once.
    expect(outcome).toEqual({ applied: false, result: '7' });
    expect(await client.redis.get(counter)).toBe('7');
  });

  it('contrast: the same in-flight script WITHOUT a request id is applied twice by the resend', async () => {
    const counter = freshCounter();
    const pending = scripts.hsTestSlowIncrPlain([counter], [7, 400]);
    await sleep(120);
    dropConnection(client);
    await expect(pending).resolves.toBe(14);
    expect(await client.redis.get(counter)).toBe('14'); // the double-apply hazard of autoResend
  });

  it('with autoResendUnfulfilledCommands=false the in-flight command is not re-sent and times out', async () => {
    const noResend = shard({ autoResendUnfulfilledCommands: false, commandTimeoutMs: 1_500 });
    try {
      await noResend.waitUntilReady(10_000);
      const { hsTestSlowIncrPlain } = noResend.defineScripts(SCRIPTS);
      const counter = freshCounter();
      const started = performance.now();
      const pending = hsTestSlowIncrPlain([counter], [7, 400]);
      await sleep(120);
      dropConnection(noResend);
      const err = await pending.catch((e: unknown) => e);
      const elapsed = performance.now() - started;
      expect(err).toBeInstanceOf(RedisTimeoutError); // settled by commandTimeout, not left hanging
      expect(elapsed).toBeLessThan(1_500 + 500);
      expect(await client.redis.get(counter)).toBe('7'); // applied once, by the original send
    } finally {
      await noResend.close();
    }
  });

  it('applies once when the caller retries after its connection was killed (CLIENT KILL)', async () => {
    const counter = freshCounter();
    const request = freshRequest();
    expect(await scripts.hsTestIncrOnce([request, counter], [TTL_MS, 4])).toEqual({
      applied: true,
      result: '4',
    });
    const id = await client.redis.client('ID');
    const killer = shard({ connectionName: 'hs-test-idempotent-killer' });
    try {
      await killer.waitUntilReady(10_000);
      expect(await killer.redis.client('KILL', 'ID', String(id))).toBe(1);
    } finally {
      await killer.close();
    }
    let retried: { applied: boolean; result: string } | undefined;
    const deadline = Date.now() + 5_000;
    while (retried === undefined && Date.now() < deadline) {
      try {
        retried = await scripts.hsTestIncrOnce([request, counter], [TTL_MS, 4]);
      } catch {
        await sleep(25); // reconnecting: commands fail fast instead of queueing
      }
    }
    expect(await client.redis.client('ID')).not.toBe(id); // it really is a new connection
    expect(retried).toEqual({ applied: false, result: '4' });
    expect(await client.redis.get(counter)).toBe('4');
  });

  it('records nothing when the body returns an error reply', async () => {
    const { hsTestFailOnce } = client.defineScripts({
      hsTestFailOnce: idempotentScript("return redis.error_reply('ERR rejected by body')", 1),
    });
    const request = freshRequest();
    await expect(hsTestFailOnce([request, freshCounter()], [TTL_MS])).rejects.toMatchObject({
      code: 'ERR',
      retryable: false,
    });
    expect(await client.redis.exists(request)).toBe(0);
  });
});
