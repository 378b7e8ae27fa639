import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from './helpers.js';

let ctx: TestContext;

beforeAll(async () => {
  ctx = await createTestContext('writer-throughput');
});
afterAll(async () => {
  await ctx?.close();
});

describe('writer counters handler throughput', () => {
  it('applies ≥ 50,000 deltas/s to MySQL (200,000 deltas over 1,000 names), exactly', async () => {
    const names = Array.from({ length: 1_000 }, (_, i) => ctx.name(`w${i}`));
    const total = 200_000;
    const at = new Date().toISOString();
    const sends: Promise<unknown>[] = [];
    for (let i = 0; i < total; i += 1) {
      const name = names[i % names.length]!;
      sends.push(
        ctx.producer.send(ctx.topic, {
          key: name,
          value: JSON.stringify({ eventId: randomUUID(), name, delta: 1 + (i % 3), at }),
        }),
      );
      if (sends.length >= 20_000) await Promise.all(sends.splice(0));
    }
    await Promise.all(sends);
    const writerStart = Date.now();
    const writer = await ctx.startWriter({
      WRITER_BATCH_MAX_MESSAGES: '5000',
      WRITER_PARTITION_CONCURRENCY: '6',
      MYSQL_CONNECTION_LIMIT: '10',
    });
    // Rate while applying: from the first stored offset (process start and group join excluded).
    const applied = async () => {
      const rows = await ctx.pools.primary.select<{ n: string | null }>(
        'SELECT SUM(next_offset) AS n FROM consumer_offsets WHERE group_id = ? AND topic = ?',
        [ctx.groupId, ctx.topic],
      );
      return Number(rows[0]?.n ?? 0);
    };
    let t0 = 0;
    let appliedAtT0 = 0;
    for (;;) {
      const n = await applied();
      if (n > 0) {
        t0 = Date.now();
        appliedAtT0 = n;
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    await ctx.waitDrained(120_000);
    const seconds = (Date.now() - t0) / 1000;
    const rate = Math.round((total - appliedAtT0) / seconds);
    console.info(
      `writer applied ${total} deltas: ${rate} deltas/s while applying (${total - appliedAtT0} in ${seconds.toFixed(2)} s), ` +
        `${Math.round(total / ((Date.now() - writerStart) / 1000))} deltas/s including process start`,
    );
    const expected = new Map<string, number>();
    for (let i = 0; i < total; i += 1) {
      const name = names[i % names.length]!;
      expected.set(name, (expected.get(name) ?? 0) + 1 + (i % 3));
    }
    const rows = await ctx.pools.primary.select<{ name: string; value: string }>(
      'SELECT name, value FROM counters',
    );
    expect(rows).toHaveLength(names.length);
    for (const row of rows) expect(Number(row.value)).toBe(expected.get(row.name));
    expect(rate).toBeGreaterThanOrEqual(50_000);
    await writer.stop();
  }, 180_000);
});
