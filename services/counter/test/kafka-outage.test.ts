import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isHealthy, startServer, stopServer } from '../../../hack/testing/stack-control.js';
import { mysqlApplyDelta } from '../src/mysql-counters.js';
import { createTestContext, ownerOf, sleep, type Child, type TestContext } from './helpers.js';

let ctx: TestContext;

beforeAll(async () => {
  ctx = await createTestContext('kafka-outage', { store: { kafkaTimeoutMs: 2_500 } });
});
afterAll(async () => {
  if (!(await isHealthy('kafka'))) await startServer('kafka');
  await ctx?.close();
});

describe('Kafka outage', () => {
  it('a delta whose event also lands in Kafka after the fallback applied it is counted once', async () => {
    const writer = await ctx.startWriter();
    const name = ctx.name('late');
    const eventId = randomUUID();
    expect(await mysqlApplyDelta(ctx.router, name, 7, eventId)).toBe(7);
    // The timed-out send lands after all: the writer must skip it (fallback_events).
    await ctx.producer.send(ctx.topic, {
      key: name,
      value: JSON.stringify({ eventId, name, delta: 7, at: new Date().toISOString() }),
    });
    await ctx.producer.send(ctx.topic, {
      key: name,
      value: JSON.stringify({ eventId: randomUUID(), name, delta: 1, at: new Date().toISOString() }),
    });
    await ctx.waitDrained();
    expect(await ctx.mysqlValue(name)).toBe(8);
    // A repeated fallback with the same id (a retried transaction) changes nothing either.
    expect(await mysqlApplyDelta(ctx.router, name, 7, eventId)).toBe(8);
    await writer.stop();
  });

  it('Kafka stopped → undo in Redis + MySQL fallback; after recovery every 2xx is counted exactly once', async () => {
    let writer: Child | undefined = await ctx.startWriter();
    const auth = await ctx.auth();
    const names = Array.from({ length: 10 }, (_, i) => ctx.name(`k${i}`));
    const acked = new Map(names.map((n) => [n, 0]));
    const inc = async (name: string) => {
      const res = await ctx.app.inject({
        method: 'POST',
        url: `/v1/counters/${name}/increment`,
        headers: auth,
      });
      if (res.statusCode === 200) acked.set(name, (acked.get(name) ?? 0) + 1);
      return res.statusCode;
    };
    for (const name of names) for (let i = 0; i < 5; i += 1) await inc(name);
    const statuses: number[] = [];
    try {
      await stopServer('kafka', 'KILL');
      const started = Date.now();
      const running = Promise.all(
        Array.from({ length: 20 }, async (_, c) => {
          for (let i = 0; i < 10; i += 1) statuses.push(await inc(names[(c + i) % names.length]!));
        }),
      );
      await running;
      console.info(`200 increments during the Kafka outage in ${Date.now() - started} ms`);
    } finally {
      await startServer('kafka');
    }
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    const fallbacks = (await ctx.registry.metrics())
      .split('\n')
      .filter((l) => l.startsWith('hyperscale_counter_writes_total'));
    console.info(fallbacks.join('\n'));
    expect(fallbacks.some((l) => l.includes('mysql_fallback'))).toBe(true);
    // After recovery: Kafka path again.
    await sleep(2_500);
    for (const name of names) for (let i = 0; i < 3; i += 1) expect(await inc(name)).toBe(200);
    if (writer.process.exitCode !== null) writer = await ctx.startWriter();
    await ctx.waitDrained(90_000);
    for (const name of names) {
      expect(await ctx.mysqlValue(name), name).toBe(acked.get(name));
      const res = await ctx.app.inject({ method: 'GET', url: `/v1/counters/${name}`, headers: auth });
      expect(res.json<{ value: number }>().value).toBe(acked.get(name));
      const redis = await ctx.redisValue(name, ownerOf(ctx, name));
      expect(redis === null || redis === acked.get(name)).toBe(true);
    }
    await writer?.stop();
  }, 180_000);
});
