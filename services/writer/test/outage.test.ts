/**
 * MySQL primary unavailable while events keep arriving: the REAL mariadb-primary is frozen with
 * SIGSTOP (connections hang, nothing is refused — the hardest case for timeouts) for several
 * seconds, then resumed (always, in finally). Nothing may be dead-lettered, everything must be
 * applied exactly once after it returns. The same for the Kafka broker frozen mid-stream.
 */
import { createMysqlPools, Registry, type LikeEvent, type MysqlPool } from '@hyperscale/platform';
import { afterAll, describe, expect, it } from 'vitest';
import {
  freezeServer,
  isHealthy,
  resumeFrozenServers,
  resumeServer,
  startServer,
  stopServer,
} from '../../../hack/testing/stack-control.js';
import { likesHandler } from '../src/handlers/likes.js';
import { runPipeline } from '../src/pipeline.js';
import {
  actualState,
  appliedCount,
  asMessage,
  createTestBed,
  drained,
  endOffsets,
  expectedState,
  logger,
  metricValue,
  produce,
  randomEvents,
  sleep,
  waitFor,
  type TestBed,
} from './helpers.js';

const beds: TestBed[] = [];
afterAll(async () => {
  await resumeFrozenServers();
  if (!(await isHealthy('kafka'))) await startServer('kafka');
  if (!(await isHealthy('mariadb-primary'))) await startServer('mariadb-primary');
  for (const bed of beds) await bed.cleanup();
});

/** The pipeline's own pool with short deadlines, as in production config. */
function shortDeadlinePools(bed: TestBed) {
  return createMysqlPools({
    primaryUrl: bed.url,
    connectionLimit: 5,
    connectTimeoutMs: 1000,
    queryTimeoutMs: 1000,
  });
}

/** Options of a likes pipeline on `bed` that retries transient failures quickly. */
function pipelineOptions(
  bed: TestBed,
  pool: MysqlPool,
  groupId: string,
  partitions: number,
  sessionTimeoutMs = 10_000,
) {
  return {
    kafka: bed.kafka,
    pool,
    groupId,
    handlers: [likesHandler({ topic: bed.topic })],
    logger,
    batch: { maxMessages: 200, maxWaitMs: 50, partitionsConcurrently: partitions },
    retry: { maxAttempts: 2, initialDelayMs: 50, maxDelayMs: 200 },
    transientPauseMs: 500,
    sessionTimeoutMs,
    heartbeatIntervalMs: 1000,
  };
}

/** MySQL holds exactly the state the events lead to. */
async function expectExactState(bed: TestBed, events: readonly LikeEvent[]): Promise<void> {
  const state = await actualState(bed.pool);
  const expected = expectedState(events);
  expect(state.invariantViolations).toEqual([]);
  expect(state.counts).toEqual(expected.counts);
  expect(state.likes).toEqual(expected.likes);
}

describe('writer during a MySQL primary or Kafka broker outage', () => {
  it('(e) primary frozen (SIGSTOP) for 6 s: nothing dead-lettered, everything applied once after it returns', async () => {
    const bed = await createTestBed('outage', 3);
    beds.push(bed);
    const groupId = bed.groupId('e');
    const pools = shortDeadlinePools(bed);
    const registry = new Registry();
    const pipeline = await runPipeline({ ...pipelineOptions(bed, pools.primary, groupId, 3), registry });
    const events: LikeEvent[] = randomEvents(9000, 60, 80, 21);
    const before = events.slice(0, 3000);
    const during = events.slice(3000, 6000);
    const after = events.slice(6000);
    let frozenMs = 0;
    try {
      await produce(bed.kafka, bed.topic, before.map(asMessage));
      expect(await waitFor(() => drained(bed.pool, bed.kafka, groupId, bed.topic), 30_000)).toBe(true);
      const t0 = performance.now();
      await stopServer('mariadb-primary', 'STOP');
      try {
        // Kafka still takes events; the writer cannot apply them.
        for (let i = 0; i < during.length; i += 500) {
          await produce(bed.kafka, bed.topic, during.slice(i, i + 500).map(asMessage));
          await sleep(700);
        }
        await sleep(Math.max(0, 6000 - (performance.now() - t0)));
      } finally {
        frozenMs = performance.now() - t0;
        await startServer('mariadb-primary');
      }
      await produce(bed.kafka, bed.topic, after.map(asMessage));
      expect(await waitFor(() => drained(bed.pool, bed.kafka, groupId, bed.topic), 90_000)).toBe(true);
      await sleep(500);
    } finally {
      await pipeline.stop();
      await pools.close();
    }
    const failed = await metricValue(registry, 'hyperscale_writer_transactions_total', { outcome: 'failed' });
    const deadLetters = await metricValue(registry, 'hyperscale_kafka_dead_letters_total');
    const dlqEnd = [...(await endOffsets(bed.kafka, bed.dlqTopic)).values()].reduce((a, v) => a + v, 0n);
    console.log(
      `[writer] (e) primary frozen ${frozenMs.toFixed(0)} ms: ${failed} transactions failed transiently, ` +
        `${deadLetters} dead letters, all ${events.length} events applied after resume`,
    );
    expect(failed).toBeGreaterThan(0);
    expect(deadLetters).toBe(0);
    expect(dlqEnd).toBe(0n);
    expect(await appliedCount(bed.pool, groupId, bed.topic)).toBe(BigInt(events.length));
    await expectExactState(bed, events);
  }, 180_000);

  it('(e2) a writer that joins while the primary is frozen cannot read its stored offsets: it delivers nothing until MySQL returns, then resumes from them', async () => {
    const bed = await createTestBed('outage-join', 2);
    beds.push(bed);
    const groupId = bed.groupId('e2');
    const pools = shortDeadlinePools(bed);
    const options = pipelineOptions(bed, pools.primary, groupId, 2);
    const events = randomEvents(4000, 30, 40, 22);
    try {
      // First writer applies half and stops; Kafka's offsets are then reset, so only MySQL knows.
      await produce(bed.kafka, bed.topic, events.slice(0, 2000).map(asMessage));
      const first = await runPipeline({ ...options, registry: new Registry() });
      expect(await waitFor(() => drained(bed.pool, bed.kafka, groupId, bed.topic), 30_000)).toBe(true);
      await first.stop();
      const admin = bed.kafka.admin();
      await admin.connect();
      await admin.resetOffsets({ groupId, topic: bed.topic, earliest: true });
      await admin.disconnect();
      await produce(bed.kafka, bed.topic, events.slice(2000).map(asMessage));

      const registry = new Registry();
      await stopServer('mariadb-primary', 'STOP');
      let second: Awaited<ReturnType<typeof runPipeline>> | null = null;
      try {
        second = await runPipeline({ ...options, registry });
        await sleep(8000);
        expect(await metricValue(registry, 'hyperscale_writer_events_applied_total')).toBe(0);
      } finally {
        await startServer('mariadb-primary');
      }
      try {
        expect(await waitFor(() => drained(bed.pool, bed.kafka, groupId, bed.topic), 90_000)).toBe(true);
        await sleep(500);
      } finally {
        await second?.stop();
      }
      const applied = await metricValue(registry, 'hyperscale_writer_events_applied_total');
      const skipped = await metricValue(registry, 'hyperscale_writer_events_skipped_total');
      console.log(
        `[writer] (e2) joined during the freeze; after resume applied ${applied}, skipped ${skipped}`,
      );
      expect(applied).toBe(2000);
      expect(await metricValue(registry, 'hyperscale_kafka_dead_letters_total')).toBe(0);
    } finally {
      await pools.close();
    }
    await expectExactState(bed, events);
  }, 180_000);

  it('(e3) the Kafka broker frozen (SIGSTOP) mid-stream past the session timeout: after it resumes, every event is applied exactly once', async () => {
    const bed = await createTestBed('broker-frozen', 3);
    beds.push(bed);
    const groupId = bed.groupId('e3');
    const pools = shortDeadlinePools(bed);
    const registry = new Registry();
    const sessionTimeoutMs = 6_000;
    const pipeline = await runPipeline({
      ...pipelineOptions(bed, pools.primary, groupId, 3, sessionTimeoutMs),
      batch: { maxMessages: 100, maxWaitMs: 50, partitionsConcurrently: 3 },
      registry,
    });
    const events: LikeEvent[] = randomEvents(12_000, 60, 80, 23);
    let appliedAtFreeze = 0n;
    try {
      await produce(bed.kafka, bed.topic, events.slice(0, 10_000).map(asMessage));
      // Freeze while the writer is in the middle of the stream.
      expect(
        await waitFor(async () => (await appliedCount(bed.pool, groupId, bed.topic)) > 500n, 30_000),
      ).toBe(true);
      await freezeServer('kafka');
      try {
        appliedAtFreeze = await appliedCount(bed.pool, groupId, bed.topic);
        await sleep(sessionTimeoutMs + 2_000);
      } finally {
        await resumeServer('kafka');
      }
      await produce(bed.kafka, bed.topic, events.slice(10_000).map(asMessage));
      expect(await waitFor(() => drained(bed.pool, bed.kafka, groupId, bed.topic), 120_000)).toBe(true);
      await sleep(500);
    } finally {
      await pipeline.stop();
      await pools.close();
    }
    const applied = await metricValue(registry, 'hyperscale_writer_events_applied_total');
    const skipped = await metricValue(registry, 'hyperscale_writer_events_skipped_total');
    console.log(
      `[writer] (e3) broker frozen ${sessionTimeoutMs + 2_000} ms after ${appliedAtFreeze} events: ` +
        `applied ${applied}, skipped as already applied ${skipped}`,
    );
    expect(appliedAtFreeze).toBeLessThan(BigInt(events.length));
    expect(applied).toBe(events.length);
    expect(await metricValue(registry, 'hyperscale_kafka_dead_letters_total')).toBe(0);
    expect(await appliedCount(bed.pool, groupId, bed.topic)).toBe(BigInt(events.length));
    await expectExactState(bed, events);
  }, 240_000);
});
