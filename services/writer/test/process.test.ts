/**
 * The REAL writer process (`node services/writer/dist/main.js`, built first) against the real
 * stack: kill -9 mid-stream several times, then graceful SIGTERM. Every event must be applied
 * exactly once — the final MySQL state is compared with the state computed from the produced events.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  actualState,
  appliedCount,
  asMessage,
  buildWriter,
  createTestBed,
  drained,
  expectedState,
  kafkaCommitted,
  killAllWriters,
  produce,
  randomEvents,
  scrapeMetric,
  sleep,
  startWriter,
  storedOffsets,
  waitFor,
  waitWriterReady,
  type TestBed,
  type WriterProcess,
} from './helpers.js';
import type { LikeEvent } from '@hyperscale/platform';

const beds: TestBed[] = [];

beforeAll(() => {
  buildWriter();
});

afterAll(async () => {
  killAllWriters();
  for (const bed of beds) await bed.cleanup();
});

/** Produces `events` in chunks at roughly `perSecond`, in order; resolves when all are acknowledged. */
async function produceStream(bed: TestBed, events: readonly LikeEvent[], perSecond: number): Promise<void> {
  const chunk = 250;
  const pauseMs = (chunk / perSecond) * 1000;
  for (let i = 0; i < events.length; i += chunk) {
    const t0 = performance.now();
    await produce(bed.kafka, bed.topic, events.slice(i, i + chunk).map(asMessage), chunk);
    await sleep(Math.max(0, pauseMs - (performance.now() - t0)));
  }
}

function expectExact(actual: Awaited<ReturnType<typeof actualState>>, events: readonly LikeEvent[]): void {
  const expected = expectedState(events);
  expect(actual.invariantViolations).toEqual([]);
  expect(actual.counts).toEqual(expected.counts);
  expect(actual.likes.size).toBe(expected.likes.size);
  expect(actual.likes).toEqual(expected.likes);
}

describe('writer process (real node process, real signals)', () => {
  it('(b) kill -9 mid-stream three times: every event applied exactly once', async () => {
    const bed = await createTestBed('crash', 6);
    beds.push(bed);
    const groupId = bed.groupId('b');
    const events = randomEvents(20_000, 200, 300, 11);
    // Small batches so a kill lands between many transactions, often inside one.
    const env = { WRITER_BATCH_MAX_MESSAGES: '100', WRITER_PARTITION_CONCURRENCY: '3' };

    let writer: WriterProcess = await startWriter(bed, groupId, env);
    await waitWriterReady(writer);
    // 16 s of stream: three kill-and-restart cycles (each a node start under load, 2-4 s) end
    // well before it does, so every kill lands mid-stream (at 2,500/s the last one once came after
    // the writer had applied all 20,000).
    const producing = produceStream(bed, events, 1250);
    const kills: { appliedAtKill: bigint; signal: string | null; mysqlAhead: number }[] = [];
    for (let k = 0; k < 3; k += 1) {
      const before = await appliedCount(bed.pool, groupId, bed.topic);
      // Kill while it is applying: wait for progress, then a random moment later.
      expect(
        await waitFor(async () => (await appliedCount(bed.pool, groupId, bed.topic)) > before, 30_000, 20),
      ).toBe(true);
      await sleep(100 + Math.floor(Math.random() * 400));
      writer.child.kill('SIGKILL');
      const exit = await writer.exited;
      const appliedAtKill = await appliedCount(bed.pool, groupId, bed.topic);
      // Partitions where the kill fell between the MySQL COMMIT and the Kafka commit (or before
      // Kafka's commit of earlier batches): MySQL is ahead and the restart must not re-apply.
      const stored = await storedOffsets(bed.pool, groupId, bed.topic);
      const committed = await kafkaCommitted(bed.kafka, groupId, bed.topic);
      const mysqlAhead = [...stored].filter(([p, next]) => (committed.get(p) ?? -1n) < next).length;
      kills.push({ appliedAtKill, signal: exit.signal, mysqlAhead });
      expect(exit.signal).toBe('SIGKILL');
      writer = await startWriter(bed, groupId, env);
      await waitWriterReady(writer);
    }
    await producing;
    expect(await waitFor(() => drained(bed.pool, bed.kafka, groupId, bed.topic), 90_000)).toBe(true);
    await sleep(500);
    const skipped = await scrapeMetric(writer, 'hyperscale_writer_events_skipped_total');
    writer.child.kill('SIGTERM');
    expect((await writer.exited).code).toBe(0);

    console.log(
      `[writer] (b) ${events.length} events over 200 posts; kill -9 at ${kills
        .map((k) => `${k.appliedAtKill} applied (MySQL ahead of Kafka on ${k.mysqlAhead} partitions)`)
        .join(', ')}; last writer skipped ${skipped} duplicates; final state exact`,
    );
    // Every kill happened mid-stream: some but not all events were in MySQL.
    for (const k of kills) {
      expect(k.appliedAtKill).toBeGreaterThan(0n);
      expect(k.appliedAtKill).toBeLessThan(BigInt(events.length));
    }
    expect(await appliedCount(bed.pool, groupId, bed.topic)).toBe(BigInt(events.length));
    expectExact(await actualState(bed.pool), events);
  }, 240_000);

  it('(f) SIGTERM: exits 0 within the shutdown timeout, MySQL never behind Kafka, nothing lost', async () => {
    const bed = await createTestBed('sigterm', 4);
    beds.push(bed);
    const groupId = bed.groupId('f');
    const events = randomEvents(12_000, 100, 200, 12);
    const env = {
      WRITER_BATCH_MAX_MESSAGES: '200',
      SHUTDOWN_TIMEOUT_MS: '15000',
      WRITER_STOP_TIMEOUT_MS: '10000',
    };

    const first = await startWriter(bed, groupId, env);
    await waitWriterReady(first);
    const producing = produceStream(bed, events, 3000);
    expect(
      await waitFor(async () => (await appliedCount(bed.pool, groupId, bed.topic)) > 2000n, 30_000, 20),
    ).toBe(true);
    // The process exports the writer's and the consumer's series.
    expect(await scrapeMetric(first, 'hyperscale_writer_events_applied_total')).toBeGreaterThan(0);
    expect(await scrapeMetric(first, 'hyperscale_writer_batch_size_count')).toBeGreaterThan(0);
    const metricsText = await (await fetch(`http://127.0.0.1:${first.metricsPort}/metrics`)).text();
    expect(metricsText).toContain('hyperscale_kafka_consumer_lag{');
    expect(metricsText).toContain('hyperscale_writer_apply_duration_seconds_bucket{');

    const t0 = performance.now();
    first.child.kill('SIGTERM');
    const exit = await first.exited;
    const exitMs = performance.now() - t0;
    expect(exit.code).toBe(0);
    expect(exitMs).toBeLessThan(15_000);
    expect(first.output()).toContain('shutdown complete');
    const appliedAtStop = await appliedCount(bed.pool, groupId, bed.topic);

    // MySQL is the authority: Kafka's committed offsets are never ahead of what MySQL applied.
    const stored = await storedOffsets(bed.pool, groupId, bed.topic);
    for (const [partition, committed] of await kafkaCommitted(bed.kafka, groupId, bed.topic)) {
      if (committed >= 0n) expect(committed).toBeLessThanOrEqual(stored.get(partition) ?? 0n);
    }

    await producing;
    const second = await startWriter(bed, groupId, env);
    await waitWriterReady(second);
    expect(await waitFor(() => drained(bed.pool, bed.kafka, groupId, bed.topic), 60_000)).toBe(true);
    await sleep(300);
    const secondSkipped = await scrapeMetric(second, 'hyperscale_writer_events_skipped_total');
    second.child.kill('SIGTERM');
    expect((await second.exited).code).toBe(0);
    console.log(
      `[writer] (f) SIGTERM mid-stream: exit 0 after ${exitMs.toFixed(0)} ms with ${appliedAtStop} of ` +
        `${events.length} applied; the next writer resumed from MySQL's offsets (${secondSkipped} duplicates) and drained`,
    );
    expect(appliedAtStop).toBeLessThan(BigInt(events.length));
    expect(await appliedCount(bed.pool, groupId, bed.topic)).toBe(BigInt(events.length));
    expectExact(await actualState(bed.pool), events);
  }, 180_000);
});
