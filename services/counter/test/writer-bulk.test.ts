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

// How FAST the writer applies deltas is measured by `make bench SCENARIOS=writer-deltas`
// (bench/RESULTS.md); this test holds it to being exact in bulk, with large batches.
describe('writer counters handler in bulk', () => {
  it('applies 200,000 deltas over 1,000 names with 5,000-message batches exactly', async () => {
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
    const writer = await ctx.startWriter({
      WRITER_BATCH_MAX_MESSAGES: '5000',
      WRITER_PARTITION_CONCURRENCY: '6',
      MYSQL_CONNECTION_LIMIT: '10',
    });
    await ctx.waitDrained(120_000);
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
    await writer.stop();
  }, 180_000);
});
