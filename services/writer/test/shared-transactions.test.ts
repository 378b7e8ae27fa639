/**
 * Shared transactions against the REAL MariaDB primary: partition batches handed over in the same
 * event-loop turn (as kafkajs hands over the partitions of one fetch) are applied by ONE
 * transaction, still exactly once per partition; a batch that fails sends the others of its
 * transaction back to one transaction each, so only it fails.
 */
import { randomUUID } from 'node:crypto';
import {
  InvalidEventError,
  Registry,
  type BatchHandler,
  type LikeEvent,
  type MysqlPool,
  type PartitionBatch,
} from '@hyperscale/platform';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyCounterDeltas, countersHandler, type CounterDeltaEvent } from '../src/handlers/counters.js';
import { likesHandler } from '../src/handlers/likes.js';
import { createBatchHandlers, type TopicHandler } from '../src/pipeline.js';
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

let bed: TestBed;
beforeAll(async () => {
  bed = await createTestBed('shared', 1);
}, 60_000);
afterAll(async () => {
  await bed.cleanup();
});

/** `count` deltas of +1 … +3 over `names` counters named `<prefix>-<i>`, from offset `from`. */
function deltas(prefix: string, count: number, names: number): CounterDeltaEvent[] {
  return Array.from({ length: count }, (_, i) => ({
    eventId: randomUUID(),
    name: `${prefix}-${i % names}`,
    delta: (i % 3) + 1,
    at: new Date().toISOString(),
  }));
}

function batchOf(
  topic: string,
  partition: number,
  from: number,
  events: readonly (CounterDeltaEvent | LikeEvent)[],
): PartitionBatch {
  return {
    topic,
    partition,
    firstOffset: String(from),
    nextOffset: String(from + events.length),
    messages: events.map((event, i) => ({
      topic,
      partition,
      offset: String(from + i),
      timestamp: String(Date.now()),
      key: 'name' in event ? event.name : event.postId,
      value: JSON.stringify(event),
      headers: {},
    })),
  };
}

function sums(events: readonly CounterDeltaEvent[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const e of events) out.set(e.name, (out.get(e.name) ?? 0) + e.delta);
  return out;
}

async function counterValues(pool: MysqlPool, prefix: string): Promise<Map<string, number>> {
  const rows = await pool.select<{ name: string; value: string }>(
    'SELECT name, value FROM counters WHERE name LIKE ?',
    [`${prefix}-%`],
  );
  return new Map(rows.map((r) => [r.name, Number(r.value)]));
}

async function histogramSum(registry: Registry, name: string): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (metric === undefined) return 0;
  const { values } = await metric.get();
  // Histogram samples carry their series name (`…_sum`, `…_count`, `…_bucket`).
  return values.find((v) => (v as { metricName?: string }).metricName === `${name}_sum`)?.value ?? 0;
}

/** The batch handler of one topic, on the test bed's database. */
function handlerOf(
  handler: TopicHandler<unknown>,
  group: string,
  registry: Registry,
  extra: { maxEventsPerTransaction?: number } = {},
): BatchHandler {
  const handle = createBatchHandlers([handler], {
    pool: bed.pool,
    groupId: bed.groupId(group),
    logger,
    registry,
    ...extra,
  })[handler.topic];
  if (handle === undefined) throw new Error(`no handler for ${handler.topic}`);
  return handle;
}

/** The counters handler, counting its `apply` calls. */
function countingCounters(
  topic: string,
  merge: boolean,
): { handler: TopicHandler<unknown>; calls: () => number } {
  let calls = 0;
  const base = countersHandler({ topic });
  const handler: TopicHandler<CounterDeltaEvent> = {
    ...base,
    mergePartitions: merge,
    apply: (conn, events) => {
      calls += 1;
      return applyCounterDeltas(conn, events);
    },
  };
  return { handler: handler as TopicHandler<unknown>, calls: () => calls };
}

describe('shared transactions', () => {
  it('the partitions of one hand-over (two topics) commit in one transaction, each exactly once', async () => {
    const prefix = `sh1${randomUUID().slice(0, 8)}`;
    const counterTopic = `${bed.topic}.counters`;
    const likesTopic = `${bed.topic}.likes`;
    const groupId = bed.groupId('one');
    const registry = new Registry();
    const counting = countingCounters(counterTopic, true);
    const handlers = createBatchHandlers([counting.handler, likesHandler({ topic: likesTopic })], {
      pool: bed.pool,
      groupId,
      logger,
      registry,
    });
    const counterHandle = handlers[counterTopic];
    const likesHandle = handlers[likesTopic];
    if (counterHandle === undefined || likesHandle === undefined) throw new Error('handlers missing');

    const parts = [0, 1, 2, 3].map((p) => deltas(`${prefix}-p${p}`, 150, 25));
    const likes = randomEvents(300, 10, 20, 7);
    await Promise.all([
      ...parts.map((events, p) => counterHandle(batchOf(counterTopic, p, 0, events))),
      likesHandle(batchOf(likesTopic, 0, 0, likes)),
    ]);

    expect(await metricValue(registry, 'hyperscale_writer_commits_total')).toBe(1);
    expect(await histogramSum(registry, 'hyperscale_writer_batches_per_commit')).toBe(5);
    // Four partitions of a handler that merges them: one apply call.
    expect(counting.calls()).toBe(1);
    expect(await counterValues(bed.pool, prefix)).toEqual(sums(parts.flat()));
    expect(await storedOffsets(bed.pool, groupId, counterTopic)).toEqual(
      new Map([0, 1, 2, 3].map((p) => [p, 150n])),
    );
    expect(await storedOffsets(bed.pool, groupId, likesTopic)).toEqual(new Map([[0, 300n]]));
    const state = await actualState(bed.pool);
    expect(state.invariantViolations).toEqual([]);
    expect(state.counts).toEqual(expectedState(likes).counts);

    // Re-delivered batches (a rebalance, a crash before the Kafka commit) next to a new one, and
    // that new one delivered twice at once (a zombie member and the new owner): the two copies
    // never share a transaction, so nothing is applied twice and every new event once.
    const next = deltas(`${prefix}-p0`, 100, 25);
    await Promise.all([
      counterHandle(batchOf(counterTopic, 1, 0, parts[1] ?? [])),
      counterHandle(batchOf(counterTopic, 2, 50, (parts[2] ?? []).slice(50))),
      counterHandle(batchOf(counterTopic, 0, 150, next)),
      counterHandle(batchOf(counterTopic, 0, 150, next)),
      likesHandle(batchOf(likesTopic, 0, 0, likes)),
    ]);
    expect(await metricValue(registry, 'hyperscale_writer_events_skipped_total')).toBe(150 + 100 + 100 + 300);
    expect(await counterValues(bed.pool, prefix)).toEqual(sums([...parts.flat(), ...next]));
    expect((await storedOffsets(bed.pool, groupId, counterTopic)).get(0)).toBe(250n);
    // …and without a shared transaction having to fall back to one transaction per batch.
    expect(await metricValue(registry, 'hyperscale_writer_transactions_total', { outcome: 'retry' })).toBe(0);
    expect((await actualState(bed.pool)).counts).toEqual(expectedState(likes).counts);
    // One more commit: the copy of the new batch that lost the race found it applied and rolled back.
    expect(await metricValue(registry, 'hyperscale_writer_commits_total')).toBe(2);

    // Only re-deliveries, together: the shared transaction finds nothing to apply, commits nothing.
    await Promise.all([
      counterHandle(batchOf(counterTopic, 1, 0, parts[1] ?? [])),
      counterHandle(batchOf(counterTopic, 3, 0, parts[3] ?? [])),
    ]);
    expect(await metricValue(registry, 'hyperscale_writer_commits_total')).toBe(2);
    expect(await metricValue(registry, 'hyperscale_writer_events_skipped_total')).toBe(650 + 300);
    expect(await metricValue(registry, 'hyperscale_writer_transactions_total', { outcome: 'empty' })).toBe(
      // before: partitions 1 and 2, the likes and the copy that lost the race; now these two
      4 + 2,
    );
    expect(await counterValues(bed.pool, prefix)).toEqual(sums([...parts.flat(), ...next]));
  }, 60_000);

  it('a handler that does not merge partitions is called once per batch, in the one transaction', async () => {
    const prefix = `sh2${randomUUID().slice(0, 8)}`;
    const topic = `${bed.topic}.nomerge`;
    const registry = new Registry();
    const counting = countingCounters(topic, false);
    const handle = handlerOf(counting.handler, 'nomerge', registry);
    const parts = [0, 1, 2].map((p) => deltas(`${prefix}-p${p}`, 60, 7));
    await Promise.all(parts.map((events, p) => handle(batchOf(topic, p, 0, events))));
    expect(counting.calls()).toBe(3);
    expect(await metricValue(registry, 'hyperscale_writer_commits_total')).toBe(1);
    expect(await counterValues(bed.pool, prefix)).toEqual(sums(parts.flat()));
  }, 60_000);

  it('a transaction of several batches holds at most maxEventsPerTransaction events', async () => {
    const prefix = `sh4${randomUUID().slice(0, 8)}`;
    const topic = `${bed.topic}.cap`;
    const registry = new Registry();
    const handle = handlerOf(countersHandler({ topic }) as TopicHandler<unknown>, 'cap', registry, {
      maxEventsPerTransaction: 100,
    });
    // 40 + 40 fit, the third does not; a batch over the cap on its own still goes.
    const parts = [40, 40, 40, 150].map((n, p) => deltas(`${prefix}-p${p}`, n, 7));
    await Promise.all(parts.map((events, p) => handle(batchOf(topic, p, 0, events))));
    expect(await metricValue(registry, 'hyperscale_writer_commits_total')).toBe(3);
    expect(await histogramSum(registry, 'hyperscale_writer_batches_per_commit')).toBe(4);
    expect(await counterValues(bed.pool, prefix)).toEqual(sums(parts.flat()));
  }, 60_000);

  it('a batch that cannot be applied fails alone: the others of its transaction commit one by one', async () => {
    const prefix = `sh3${randomUUID().slice(0, 8)}`;
    const topic = `${bed.topic}.poison`;
    // The group handlerOf uses (bed.groupId is deterministic per name).
    const groupId = bed.groupId('poison');
    const registry = new Registry();
    const base = countersHandler({ topic });
    const poisoned: TopicHandler<CounterDeltaEvent> = {
      ...base,
      apply: (conn, events) => {
        if (events.some(({ event }) => event.name.includes('-poison-')))
          throw new InvalidEventError('this event can never be stored');
        return applyCounterDeltas(conn, events);
      },
    };
    const handle = handlerOf(poisoned as TopicHandler<unknown>, 'poison', registry);
    const good0 = deltas(`${prefix}-p0`, 80, 9);
    const bad1 = [...deltas(`${prefix}-p1`, 40, 9), ...deltas(`${prefix}-poison`, 1, 1)];
    const good2 = deltas(`${prefix}-p2`, 80, 9);
    const results = await Promise.allSettled([
      handle(batchOf(topic, 0, 0, good0)),
      handle(batchOf(topic, 1, 0, bad1)),
      handle(batchOf(topic, 2, 0, good2)),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    const failure = results[1];
    expect(failure?.status === 'rejected' ? failure.reason : undefined).toBeInstanceOf(InvalidEventError);
    // Nothing of the failed batch, everything of the others, once.
    expect(await counterValues(bed.pool, prefix)).toEqual(sums([...good0, ...good2]));
    expect(await storedOffsets(bed.pool, groupId, topic)).toEqual(
      new Map([
        [0, 80n],
        [2, 80n],
      ]),
    );
    expect(await metricValue(registry, 'hyperscale_writer_transactions_total', { outcome: 'retry' })).toBe(3);
    expect(await metricValue(registry, 'hyperscale_writer_commits_total')).toBe(2);
  }, 60_000);
});
