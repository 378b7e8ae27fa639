/**
 * The offset protocol under concurrent duplicate delivery, against the REAL MariaDB primary: three
 * "members" (a zombie that lost its partition but is still applying, the new owner, and a retry
 * after an unanswered COMMIT) apply the same partition at the same time, each from offset 0 in its
 * own batch sizes. The `SELECT … FOR UPDATE` on the partition's offset row must serialize them so
 * that every event is applied exactly once, whatever the interleaving.
 */
import { randomUUID } from 'node:crypto';
import { createMysqlPools, Registry, type LikeEvent } from '@hyperscale/platform';
import type { PartitionBatch } from '@hyperscale/platform';
import { afterAll, describe, expect, it } from 'vitest';
import { likesHandler } from '../src/handlers/likes.js';
import { createBatchHandler } from '../src/pipeline.js';
import {
  actualState,
  createTestBed,
  expectedState,
  logger,
  metricValue,
  randomEvents,
  storedOffsets,
  type TestBed,
} from './helpers.js';

const beds: TestBed[] = [];
afterAll(async () => {
  for (const bed of beds) await bed.cleanup();
});

function batchOf(topic: string, events: readonly LikeEvent[], from: number, size: number): PartitionBatch {
  const slice = events.slice(from, from + size);
  return {
    topic,
    partition: 0,
    firstOffset: String(from),
    nextOffset: String(from + slice.length),
    messages: slice.map((event, i) => ({
      topic,
      partition: 0,
      offset: String(from + i),
      timestamp: String(Date.now()),
      key: event.postId,
      value: JSON.stringify(event),
      headers: { 'x-test': randomUUID() },
    })),
  };
}

describe('offset protocol under concurrent duplicate delivery', () => {
  it('three members applying one partition at once from offset 0 apply every event exactly once', async () => {
    const bed = await createTestBed('zombie', 1);
    beds.push(bed);
    const groupId = bed.groupId('z');
    const events = randomEvents(6000, 20, 40, 31);
    const pools = createMysqlPools({
      primaryUrl: bed.url,
      connectionLimit: 6,
      connectTimeoutMs: 2000,
      queryTimeoutMs: 5000,
    });
    const registry = new Registry();
    const handle = createBatchHandler(likesHandler({ topic: bed.topic }), {
      pool: pools.primary,
      groupId,
      logger,
      registry,
    });
    const member = async (sizes: readonly number[]): Promise<number> => {
      let position = 0;
      let calls = 0;
      while (position < events.length) {
        const size = sizes[calls % sizes.length] ?? 100;
        const batch = batchOf(bed.topic, events, position, size);
        await handle(batch);
        position = Number(batch.nextOffset);
        calls += 1;
      }
      return calls;
    };
    try {
      const calls = await Promise.all([member([400, 250]), member([300, 125, 700]), member([97])]);
      const delivered = 3 * events.length;
      const applied = await metricValue(registry, 'hyperscale_writer_events_applied_total');
      const skipped = await metricValue(registry, 'hyperscale_writer_events_skipped_total', {
        reason: 'duplicate',
      });
      const retries = await metricValue(registry, 'hyperscale_writer_transactions_total', {
        outcome: 'retry',
      });
      console.log(
        `[writer] zombie: ${calls.join('+')} concurrent batch calls delivered ${delivered} events → ` +
          `${applied} applied, ${skipped} skipped as duplicates, ${retries} transaction retries`,
      );
      expect(applied).toBe(events.length);
      expect(skipped).toBe(delivered - events.length);
    } finally {
      await pools.close();
    }
    expect(await storedOffsets(bed.pool, groupId, bed.topic)).toEqual(new Map([[0, BigInt(events.length)]]));
    const state = await actualState(bed.pool);
    const expected = expectedState(events);
    expect(state.invariantViolations).toEqual([]);
    expect(state.counts).toEqual(expected.counts);
    expect(state.likes).toEqual(expected.likes);
  }, 120_000);
});
