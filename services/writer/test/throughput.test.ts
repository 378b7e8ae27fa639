/**
 * Throughput of the likes pipeline on the local stack (real MariaDB primary + Kafka): a backlog is
 * produced first, then the pipeline is started and timed from "group joined" to "MySQL's stored
 * offsets reached the end of every partition". Prints events/s and row changes/s; asserts a floor
 * well below the measured figure so a regression (e.g. one statement per event) fails.
 */
import { Registry } from '@hyperscale/platform';
import { afterAll, describe, expect, it } from 'vitest';
import { likesHandler } from '../src/handlers/likes.js';
import { runPipeline } from '../src/pipeline.js';
import {
  actualState,
  asMessage,
  createTestBed,
  drained,
  expectedState,
  logger,
  metricValue,
  produce,
  randomEvents,
  waitFor,
  type TestBed,
} from './helpers.js';

const beds: TestBed[] = [];
afterAll(async () => {
  for (const bed of beds) await bed.cleanup();
});

async function measure(
  name: string,
  partitions: number,
  events: number,
  concurrency: number,
  maxMessages: number,
): Promise<number> {
  const bed = await createTestBed(name, partitions);
  beds.push(bed);
  const groupId = bed.groupId('bench');
  // 5,000 posts × 20,000 users: few repeats inside a batch, i.e. close to the worst case for collapse.
  const produced = randomEvents(events, 5000, 20_000, 7);
  await produce(bed.kafka, bed.topic, produced.map(asMessage), 2000);
  const registry = new Registry();
  const pipeline = await runPipeline({
    kafka: bed.kafka,
    pool: bed.pool,
    groupId,
    handlers: [likesHandler({ topic: bed.topic })],
    logger,
    registry,
    batch: { maxMessages, maxWaitMs: 100, partitionsConcurrently: concurrency },
  });
  const started = performance.now();
  try {
    expect(await waitFor(() => drained(bed.pool, bed.kafka, groupId, bed.topic), 240_000, 50)).toBe(true);
  } finally {
    await pipeline.stop();
  }
  const seconds = (performance.now() - started) / 1000;
  const rows = await metricValue(registry, 'hyperscale_writer_rows_changed_total');
  const state = await actualState(bed.pool);
  const expected = expectedState(produced);
  expect(state.invariantViolations).toEqual([]);
  expect(state.counts).toEqual(expected.counts);
  expect(state.likes.size).toBe(expected.likes.size);
  const rate = events / seconds;
  console.log(
    `[writer] throughput ${name}: ${events} events, ${partitions} partition(s), concurrency ${concurrency}, ` +
      `batch ≤ ${maxMessages}: ${seconds.toFixed(2)} s → ${Math.round(rate)} events/s ` +
      `(${Math.round(rows / seconds)} row changes/s, ${Math.round(rate / partitions)} events/s per partition)`,
  );
  return rate;
}

describe('writer throughput (local stack)', () => {
  it('one partition', async () => {
    expect(await measure('tp1', 1, 40_000, 1, Number(process.env['HS_BENCH_BATCH'] ?? 1000))).toBeGreaterThan(
      3000,
    );
  }, 300_000);

  it('six partitions applied in parallel', async () => {
    expect(await measure('tp6', 6, 120_000, 6, 1000)).toBeGreaterThan(5000);
  }, 300_000);
});
