/**
 * The writer pipeline in-process against the REAL MariaDB primary and Kafka broker: exact final
 * state, idempotence against repeats and direct (fallback) writes, offsets ahead in MySQL, poison
 * messages. Each test has its own database, topic and group (test beds), removed in afterAll.
 */
import { decodeHeaders, DLQ_HEADERS, Registry, type LikeEvent } from '@hyperscale/platform';
import { afterAll, describe, expect, it } from 'vitest';
import { likesHandler } from '../src/handlers/likes.js';
import { runPipeline, type PipelineHandle, type PipelineOptions } from '../src/pipeline.js';
import {
  actualState,
  appliedCount,
  asMessage,
  createTestBed,
  drained,
  expectedState,
  kafkaCommitted,
  likeEvent,
  logger,
  metricValue,
  produce,
  randomEvents,
  sleep,
  storedOffsets,
  waitFor,
  type ActualState,
  type OutMessage,
  type TestBed,
} from './helpers.js';

const beds: TestBed[] = [];
const pipelines: PipelineHandle[] = [];

afterAll(async () => {
  await Promise.all(pipelines.map((p) => p.stop()));
  for (const bed of beds) await bed.cleanup();
});

async function bed(name: string, partitions: number): Promise<TestBed> {
  const b = await createTestBed(name, partitions);
  beds.push(b);
  return b;
}

async function start(
  b: TestBed,
  groupId: string,
  registry: Registry,
  extra: Partial<PipelineOptions> = {},
): Promise<PipelineHandle> {
  const pipeline = await runPipeline({
    kafka: b.kafka,
    pool: b.pool,
    groupId,
    handlers: [likesHandler({ topic: b.topic })],
    logger,
    registry,
    batch: { maxMessages: 300, maxWaitMs: 50, partitionsConcurrently: 3 },
    sessionTimeoutMs: 6000,
    heartbeatIntervalMs: 500,
    ...extra,
  });
  pipelines.push(pipeline);
  return pipeline;
}

function expectExact(actual: ActualState, events: readonly LikeEvent[]): void {
  const expected = expectedState(events);
  expect(actual.invariantViolations).toEqual([]);
  expect(actual.counts).toEqual(expected.counts);
  expect(actual.likes.size).toBe(expected.likes.size);
  expect(actual.likes).toEqual(expected.likes);
}

describe('writer pipeline (in-process, real MariaDB + Kafka)', () => {
  it('(a) applies likes/unlikes with repeats and like→unlike→like exactly; repeats and fallback writes change nothing', async () => {
    const b = await bed('exact', 4);
    const groupId = b.groupId('a');
    // Hand-written sequences on a few pairs, then a random mix over 40 posts × 25 users.
    const scripted: LikeEvent[] = [
      likeEvent('like', 'post-a', 'alice'),
      likeEvent('like', 'post-a', 'alice'), // repeat: no-op
      likeEvent('unlike', 'post-a', 'alice'),
      likeEvent('like', 'post-a', 'alice'), // like → unlike → like: liked, at this time
      likeEvent('unlike', 'post-a', 'bob'), // unlike of nothing
      likeEvent('like', 'post-b', 'bob'),
      likeEvent('unlike', 'post-b', 'bob'),
      likeEvent('unlike', 'post-b', 'bob'),
      likeEvent('like', 'post-b', 'carol'),
    ];
    const first = [...scripted, ...randomEvents(6000, 40, 25, 1)];
    await produce(b.kafka, b.topic, first.map(asMessage));

    const registry = new Registry();
    const started = performance.now();
    const pipeline = await start(b, groupId, registry);
    expect(await waitFor(() => drained(b.pool, b.kafka, groupId, b.topic), 60_000)).toBe(true);
    const ms = performance.now() - started;
    const state1 = await actualState(b.pool);
    expectExact(state1, first);
    expect(state1.likes.has('post-a/alice')).toBe(true);
    expect(state1.likes.has('post-b/bob')).toBe(false);
    expect(await metricValue(registry, 'hyperscale_writer_events_applied_total')).toBe(first.length);
    expect(await metricValue(registry, 'hyperscale_writer_events_skipped_total')).toBe(0);
    const collapsed = await metricValue(registry, 'hyperscale_writer_events_noop_total', {
      reason: 'collapsed',
    });
    console.log(
      `[writer] (a) ${first.length} events → ${state1.likes.size} likes on ${state1.counts.size} posts in ` +
        `${ms.toFixed(0)} ms incl. group join; ${collapsed} collapsed within batches`,
    );

    // Round 2: events that repeat the current state (like of liked, unlike of absent), and a
    // fallback path that wrote a like straight into MySQL before its event arrives.
    await b.pool.withConnection(async (conn) => {
      await conn.unprepared('START TRANSACTION');
      await conn.execute('INSERT INTO like_records (post_id, user_id, created_at) VALUES (?, ?, ?)', [
        'post-fallback',
        'dave',
        new Date(Date.UTC(2026, 10, 21, 9, 0, 0)),
      ]);
      await conn.execute(
        'INSERT INTO post_stats (post_id, like_count) VALUES (?, 1) ON DUPLICATE KEY UPDATE like_count = like_count + 1',
        ['post-fallback'],
      );
      await conn.unprepared('COMMIT');
    });
    const fallbackLike: LikeEvent = {
      eventId: 'fallback-1',
      type: 'like',
      postId: 'post-fallback',
      userId: 'dave',
      at: new Date(Date.UTC(2026, 10, 21, 9, 0, 0)).toISOString(),
    };
    const repeats: LikeEvent[] = [];
    for (const key of [...state1.likes.keys()].slice(0, 200)) {
      const [postId = '', userId = ''] = key.split('/');
      repeats.push(likeEvent('like', postId, userId));
    }
    for (let i = 0; i < 100; i += 1) repeats.push(likeEvent('unlike', `post-${i % 40}`, `nobody-${i}`));
    const second = [fallbackLike, ...repeats, fallbackLike];
    const rowsBefore = await metricValue(registry, 'hyperscale_writer_rows_changed_total');
    await produce(b.kafka, b.topic, second.map(asMessage));
    expect(await waitFor(() => drained(b.pool, b.kafka, groupId, b.topic), 30_000)).toBe(true);
    const state2 = await actualState(b.pool);
    expectExact(state2, [fallbackLike, ...first, ...second]);
    expect(state2.counts.get('post-fallback')).toBe(1);
    expect(await metricValue(registry, 'hyperscale_writer_rows_changed_total')).toBe(rowsBefore);
    expect(
      await metricValue(registry, 'hyperscale_writer_events_noop_total', { reason: 'unchanged' }),
    ).toBeGreaterThanOrEqual(repeats.length + 1);

    // Round 3: a like whose send timed out was written by the fallback WITH its event id
    // (fallback_events), then the user unliked through the fallback too. When the like's event
    // lands after all, it must not bring the like back.
    const lateLike: LikeEvent = {
      eventId: 'fallback-2',
      type: 'like',
      postId: 'post-late',
      userId: 'erin',
      at: new Date().toISOString(),
    };
    await b.pool.withConnection(async (conn) => {
      await conn.unprepared('START TRANSACTION');
      await conn.execute('INSERT INTO fallback_events (event_id) VALUES (?)', [lateLike.eventId]);
      await conn.execute('INSERT INTO like_records (post_id, user_id, created_at) VALUES (?, ?, ?)', [
        'post-late',
        'erin',
        new Date(),
      ]);
      await conn.execute('INSERT INTO post_stats (post_id, like_count) VALUES (?, 1)', ['post-late']);
      await conn.unprepared('COMMIT');
      await conn.unprepared('START TRANSACTION');
      await conn.execute('DELETE FROM like_records WHERE post_id = ? AND user_id = ?', ['post-late', 'erin']);
      await conn.execute('UPDATE post_stats SET like_count = like_count - 1 WHERE post_id = ?', [
        'post-late',
      ]);
      await conn.unprepared('COMMIT');
    });
    const bystander = likeEvent('like', 'post-late', 'frank');
    await produce(b.kafka, b.topic, [lateLike, bystander].map(asMessage));
    expect(await waitFor(() => drained(b.pool, b.kafka, groupId, b.topic), 30_000)).toBe(true);
    const state3 = await actualState(b.pool);
    expect(state3.invariantViolations).toEqual([]);
    expect(state3.likes.has('post-late/erin')).toBe(false);
    expect(state3.likes.has('post-late/frank')).toBe(true);
    expect(state3.counts.get('post-late')).toBe(1);
    expect(await metricValue(registry, 'hyperscale_writer_events_noop_total', { reason: 'fallback' })).toBe(
      1,
    );
    await pipeline.stop();
  });

  it('(c) offsets ahead in MySQL: Kafka reset to earliest re-delivers nothing twice; without the seek, duplicates are skipped in the transaction', async () => {
    const b = await bed('ahead', 3);
    const groupId = b.groupId('c');
    const events = randomEvents(3000, 30, 20, 3);
    await produce(b.kafka, b.topic, events.map(asMessage));
    const p1 = await start(b, groupId, new Registry());
    expect(await waitFor(() => drained(b.pool, b.kafka, groupId, b.topic), 60_000)).toBe(true);
    await p1.stop();
    const before = await actualState(b.pool);
    expectExact(before, events);
    const storedBefore = await storedOffsets(b.pool, groupId, b.topic);

    // While no member runs: Kafka's committed offsets go back to the start (far behind MySQL).
    const resetToEarliest = async (): Promise<void> => {
      const admin = b.kafka.admin();
      await admin.connect();
      try {
        await admin.resetOffsets({ groupId, topic: b.topic, earliest: true });
      } finally {
        await admin.disconnect();
      }
      for (const offset of (await kafkaCommitted(b.kafka, groupId, b.topic)).values())
        expect(offset <= 0n).toBe(true);
    };
    await resetToEarliest();

    // 1. Normal start: partitions are sought to MySQL's offsets, so nothing old is even delivered.
    const r2 = new Registry();
    const p2 = await start(b, groupId, r2);
    const extra = randomEvents(300, 30, 20, 33);
    await produce(b.kafka, b.topic, extra.map(asMessage));
    expect(await waitFor(() => drained(b.pool, b.kafka, groupId, b.topic), 30_000)).toBe(true);
    await sleep(300);
    await p2.stop();
    expect(await metricValue(r2, 'hyperscale_writer_events_applied_total')).toBe(extra.length);
    expect(await metricValue(r2, 'hyperscale_writer_events_skipped_total')).toBe(0);
    const afterSeek = await actualState(b.pool);
    expectExact(afterSeek, [...events, ...extra]);
    const storedMid = await storedOffsets(b.pool, groupId, b.topic);

    // 2. Same situation without the seek: everything is re-delivered from offset 0 and every event
    //    is recognised as applied by the offset stored with the data.
    await resetToEarliest();
    const r3 = new Registry();
    const p3 = await start(b, groupId, r3, { seekToStoredOffsets: false });
    const total = events.length + extra.length;
    expect(
      await waitFor(
        async () => (await metricValue(r3, 'hyperscale_writer_events_skipped_total')) >= total,
        30_000,
      ),
    ).toBe(true);
    await sleep(500);
    await p3.stop();
    const skipped = await metricValue(r3, 'hyperscale_writer_events_skipped_total', { reason: 'duplicate' });
    console.log(
      `[writer] (c) MySQL ahead of Kafka: with seek 0 re-delivered; without seek ${skipped} re-delivered events skipped, 0 applied`,
    );
    expect(skipped).toBe(total);
    expect(await metricValue(r3, 'hyperscale_writer_events_applied_total')).toBe(0);
    expect(await actualState(b.pool)).toEqual(afterSeek);
    expect(await storedOffsets(b.pool, groupId, b.topic)).toEqual(storedMid);
    expect([...storedMid.values()].reduce((a, v) => a + v, 0n)).toBe(BigInt(total));
    expect([...storedBefore.values()].reduce((a, v) => a + v, 0n)).toBe(BigInt(events.length));
  });

  it('(d) poison messages go to <topic>.dlq, the valid ones around them are applied', async () => {
    const b = await bed('poison', 3);
    const groupId = b.groupId('d');
    const valid: LikeEvent[] = [];
    const messages: OutMessage[] = [];
    const poisonValues: (string | null)[] = [
      'not json',
      JSON.stringify({ type: 'like' }),
      null,
      JSON.stringify({ ...likeEvent('like', 'post-1', 'x'), userId: 'has space' }),
      JSON.stringify({ ...likeEvent('like', 'post-1', 'x'), at: '0999-01-01T00:00:00.000Z' }),
      JSON.stringify({ ...likeEvent('like', 'post-1', 'x'), type: 'love' }),
    ];
    const poisonKeys: string[] = [];
    const random = randomEvents(600, 12, 10, 4);
    random.forEach((event, i) => {
      messages.push(asMessage(event));
      valid.push(event);
      if (i % 100 === 50) {
        const value = poisonValues[poisonKeys.length % poisonValues.length];
        if (value === undefined) throw new Error('unreachable');
        poisonKeys.push(`poison-${poisonKeys.length}`);
        messages.push({ key: event.postId, value });
      }
    });
    // One poison message as the very last message of its partition.
    messages.push({ key: valid.at(-1)?.postId ?? 'post-0', value: 'trailing poison' });
    const poisonCount = poisonKeys.length + 1;
    await produce(b.kafka, b.topic, messages);

    const registry = new Registry();
    const pipeline = await start(b, groupId, registry, {
      retry: { maxAttempts: 2, initialDelayMs: 10, maxDelayMs: 50 },
    });
    expect(
      await waitFor(
        async () =>
          (await metricValue(registry, 'hyperscale_kafka_dead_letters_total')) >= poisonCount &&
          (await metricValue(registry, 'hyperscale_writer_events_applied_total')) >= valid.length,
        60_000,
      ),
    ).toBe(true);
    await sleep(500);
    await pipeline.stop();
    expect(await metricValue(registry, 'hyperscale_kafka_dead_letters_total')).toBe(poisonCount);
    expect(await metricValue(registry, 'hyperscale_writer_events_applied_total')).toBe(valid.length);
    expectExact(await actualState(b.pool), valid);

    // The DLQ holds exactly the poison messages, with their origin and the reason.
    const dead: { value: string | null; error: string; offset: string }[] = [];
    const reader = b.kafka.consumer({ groupId: b.groupId('dlq-reader'), maxWaitTimeInMs: 100 });
    await reader.connect();
    try {
      await reader.subscribe({ topics: [b.dlqTopic], fromBeginning: true });
      await reader.run({
        eachMessage: async ({ message }) => {
          const headers = decodeHeaders(message.headers);
          dead.push({
            value: message.value === null ? null : message.value.toString(),
            error: headers[DLQ_HEADERS.error] ?? '',
            offset: headers[DLQ_HEADERS.offset] ?? '',
          });
        },
      });
      await waitFor(() => dead.length >= poisonCount, 20_000);
      await sleep(500);
    } finally {
      await reader.disconnect();
    }
    expect(dead).toHaveLength(poisonCount);
    const expectedValues = [
      ...messages.filter((m) => m.value === null || !isValid(m.value)).map((m) => m.value),
    ];
    expect(dead.map((d) => d.value).sort()).toEqual(expectedValues.sort());
    for (const d of dead)
      expect(d.error).toMatch(/not JSON|missing|invalid|no value|outside the years|type must be/);
    console.log(
      `[writer] (d) ${valid.length} valid events applied, ${dead.length} poison messages dead-lettered: ` +
        dead.map((d) => `${d.value === null ? 'null' : d.value.slice(0, 20)} → ${d.error}`).join(' | '),
    );
    expect(await appliedCount(b.pool, groupId, b.topic)).toBeGreaterThan(0n);
  });
});

function isValid(value: string): boolean {
  try {
    likesHandler().decode(value);
    return true;
  } catch {
    return false;
  }
}
