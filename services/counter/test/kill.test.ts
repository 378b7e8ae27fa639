/**
 * kill -9 of the REAL counter process (`node services/counter/dist/main.js`) under load, twice, with
 * the real writer running: increments over 40 names and unique events from concurrent HTTP clients.
 * After the writer drained: every increment answered 2xx is in MySQL (`counters.value` between the
 * acknowledged sum and that sum plus the deltas whose outcome is unknown, exact for names without
 * unknown outcomes); every acknowledged user is in `unique_daily`; the API and Redis equal MySQL —
 * also where the killed process left an increment in Redis that never reached Kafka (its pending
 * entry expires, the hash is treated as cold and re-warmed behind the writer).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { counterKeys } from '../src/keys.js';
import { dayOf, uniqueKeys } from '../src/uniques-store.js';
import { createTestContext, ownerOf, sleep, waitFor, type Child, type TestContext } from './helpers.js';

let ctx: TestContext;
let counter: Child | undefined;

beforeAll(async () => {
  ctx = await createTestContext('kill');
  await ctx.startWriter();
});
afterAll(async () => {
  await counter?.stop().catch(() => undefined);
  await ctx?.close();
});

/** KAFKA_SEND_TIMEOUT_MS of the counter process; its pending entries expire 2.5 s + 2 s later. */
const SEND_TIMEOUT_MS = 2_000;
const PENDING_MS = SEND_TIMEOUT_MS + 500 + 2_000;
const DAY = dayOf(Date.now() - 86_400_000);
const AT = `${DAY}T12:00:00.000Z`;

/** What a failed fetch means: refused = never reached the process (no effect), else unknown. */
function neverSent(err: unknown): boolean {
  const cause = (err as { cause?: { code?: unknown } }).cause;
  return cause?.code === 'ECONNREFUSED';
}

describe('kill -9 of the counter process under load', () => {
  it('loses no acknowledged increment or unique user, and Redis converges to MySQL', async () => {
    const env = { KAFKA_SEND_TIMEOUT_MS: String(SEND_TIMEOUT_MS) };
    counter = await ctx.startCounter(env);
    let port = counter.httpPort!;
    const names = Array.from({ length: 40 }, (_, i) => ctx.name(`k${i}`));
    const uniqueName = ctx.name('dau');
    const writerAuth = (await ctx.auth()).authorization;
    const userTokens = new Map<string, string>();
    const tokenOf = async (user: string) => {
      let token = userTokens.get(user);
      if (token === undefined) {
        token = (await ctx.auth(user, [])).authorization;
        userTokens.set(user, token);
      }
      return token;
    };
    const acked = new Map(names.map((n) => [n, 0]));
    const unknown = new Map(names.map((n) => [n, 0]));
    const ackedUsers = new Set<string>();
    const unknownUsers = new Set<string>();
    const counts = { ok: 0, unknown: 0, refused: 0, other: [] as string[] };
    let stop = false;
    let n = 0;
    let u = 0;

    const sendUnique = async (user: string): Promise<'ok' | 'refused' | 'unknown'> => {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/v1/uniques/${uniqueName}/events`, {
          method: 'POST',
          headers: { authorization: await tokenOf(user), 'content-type': 'application/json' },
          body: JSON.stringify({ userId: user, at: AT }),
          signal: AbortSignal.timeout(10_000),
        });
        await res.body?.cancel();
        return res.status === 200 ? 'ok' : 'unknown';
      } catch (err) {
        return neverSent(err) ? 'refused' : 'unknown';
      }
    };

    const incrementWorker = async () => {
      while (!stop) {
        const i = n++;
        const name = names[(i * 7) % names.length]!;
        const delta = 1 + (i % 5);
        try {
          const res = await fetch(`http://127.0.0.1:${port}/v1/counters/${name}/increment`, {
            method: 'POST',
            headers: { authorization: writerAuth, 'content-type': 'application/json' },
            body: JSON.stringify({ delta }),
            signal: AbortSignal.timeout(10_000),
          });
          const body = await res.text();
          if (res.status === 200) {
            acked.set(name, acked.get(name)! + delta);
            counts.ok += 1;
          } else {
            // A 5xx may follow a Kafka send that lands later: the outcome is unknown.
            unknown.set(name, unknown.get(name)! + delta);
            counts.other.push(`${res.status} ${body}`);
          }
        } catch (err) {
          if (neverSent(err)) {
            counts.refused += 1;
          } else {
            unknown.set(name, unknown.get(name)! + delta);
            counts.unknown += 1;
          }
          await sleep(20);
        }
      }
    };
    const uniqueWorker = async () => {
      while (!stop) {
        const user = `user${u++}`;
        const outcome = await sendUnique(user);
        if (outcome === 'ok') ackedUsers.add(user);
        else if (outcome === 'unknown') unknownUsers.add(user);
        if (outcome !== 'ok') await sleep(20);
      }
    };

    const started = performance.now();
    const load = Promise.all([
      ...Array.from({ length: 16 }, incrementWorker),
      ...Array.from({ length: 4 }, uniqueWorker),
    ]);
    const restarts: number[] = [];
    /** Acknowledged increments at each kill and at the end: the load ran in every phase. */
    const okAt: number[] = [];
    let lastKill = 0;
    try {
      for (let kill = 0; kill < 2; kill += 1) {
        await sleep(2_500);
        okAt.push(counts.ok);
        await counter.kill9();
        lastKill = Date.now();
        const killedAt = performance.now();
        counter = await ctx.startCounter(env);
        port = counter.httpPort!;
        restarts.push(performance.now() - killedAt);
      }
      await sleep(2_500);
    } finally {
      stop = true;
      await load;
    }
    okAt.push(counts.ok);
    const seconds = (performance.now() - started) / 1000;

    // Unique events are idempotent per (name, day, user): a user whose answer was lost is sent again.
    for (const user of unknownUsers) {
      await waitFor(async () => (await sendUnique(user)) === 'ok', 20_000, `unique event of ${user} resent`);
      ackedUsers.add(user);
    }
    const unknownNames = names.filter((name) => unknown.get(name)! > 0);
    console.info(
      `kill -9 ×2: ${counts.ok} increments acknowledged (${(counts.ok / seconds).toFixed(0)}/s over HTTP), ` +
        `${counts.unknown} unknown outcomes over ${unknownNames.length} names, ${counts.refused} refused while down, ` +
        `${counts.other.length} other answers; ${ackedUsers.size} unique users (${unknownUsers.size} resent); ` +
        `restart to ready ${restarts.map((ms) => (ms / 1000).toFixed(1)).join(' s, ')} s; ` +
        `acknowledged at the kills and at the end: ${okAt.join(', ')}`,
    );
    expect(okAt[0], 'acknowledged before the first kill').toBeGreaterThan(100);
    expect(okAt[1]! - okAt[0]!, 'acknowledged between the kills').toBeGreaterThan(100);
    expect(okAt[2]! - okAt[1]!, 'acknowledged after the last restart').toBeGreaterThan(100);
    expect(counts.unknown + counts.refused, 'requests hit by the kills').toBeGreaterThan(0);
    expect(counts.other.filter((o) => !o.startsWith('5'))).toEqual([]);

    await ctx.waitDrained(120_000);
    let exact = 0;
    for (const name of names) {
      const value = await ctx.mysqlValue(name);
      const floor = acked.get(name)!;
      expect(value, `MySQL ${name} ≥ acknowledged`).toBeGreaterThanOrEqual(floor);
      expect(value, `MySQL ${name} ≤ acknowledged + unknown`).toBeLessThanOrEqual(floor + unknown.get(name)!);
      if (unknown.get(name) === 0) {
        expect(value, `MySQL ${name} exact`).toBe(floor);
        exact += 1;
      }
    }
    const mysqlUsers = await ctx.pools.primary.select<{ user_id: string }>(
      'SELECT user_id FROM unique_daily WHERE name = ? AND day = ? ORDER BY user_id',
      [uniqueName, DAY],
    );
    expect(mysqlUsers.map((r) => r.user_id)).toEqual([...ackedUsers].sort());

    // Redis converges: a hash the killed process left with an unacknowledged delta carries a pending
    // entry; once it expires the hash is cold and the next read re-warms it from MySQL.
    const stale: string[] = [];
    for (const name of names) {
      const keys = counterKeys(name);
      const redis = ctx.shard(ownerOf(ctx, name)).redis;
      if ((await redis.zcard(keys.pending)) > 0) stale.push(name);
    }
    await sleep(Math.max(0, lastKill + PENDING_MS + 500 - Date.now()));
    const reader = (await ctx.auth('reader', [])).authorization;
    for (const name of names) {
      const value = await ctx.mysqlValue(name);
      const res = await fetch(`http://127.0.0.1:${port}/v1/counters/${name}`, {
        headers: { authorization: reader },
        signal: AbortSignal.timeout(10_000),
      });
      expect(res.status).toBe(200);
      expect(((await res.json()) as { value: number }).value, `API ${name}`).toBe(value);
      expect(await ctx.redisValue(name, ownerOf(ctx, name)), `Redis ${name}`).toBe(value);
    }
    const res = await fetch(`http://127.0.0.1:${port}/v1/uniques/${uniqueName}?day=${DAY}`, {
      headers: { authorization: reader },
      signal: AbortSignal.timeout(10_000),
    });
    expect(((await res.json()) as { count: number }).count).toBe(mysqlUsers.length);
    const set = uniqueKeys(uniqueName, DAY).set;
    expect(await ctx.shard(ownerOf(ctx, uniqueName)).redis.scard(set)).toBe(mysqlUsers.length);
    console.info(
      `after drain: ${exact}/${names.length} names without unknown outcomes exact in MySQL, ` +
        `${stale.length} hashes still had pending entries of a killed process; API and Redis = MySQL for all`,
    );
  }, 180_000);
});
