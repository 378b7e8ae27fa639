/**
 * Kafka producer/consumer against the REAL local broker (hack/stack.sh, 127.0.0.1:9092). Every test
 * creates its own topics (unique per run) and deletes them afterwards; the broker-outage test kills
 * the broker and always restarts it (and waits until it is ready) before the file ends.
 */
import { randomBytes } from 'node:crypto';
import type { Kafka, KafkaMessage } from 'kafkajs';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stack, startServer, stopServer } from '../../../hack/testing/stack-control.js';
import {
  BatchConsumer,
  TransientHandlerError,
  DLQ_HEADERS,
  GroupCommitProducer,
  KafkaUnavailableError,
  createKafka,
  decodeHeaders,
  deleteTopics,
  ensureTopics,
} from '../src/kafka/index.js';
import type { PartitionBatch, SendResult } from '../src/kafka/index.js';

const BROKERS = [...stack.kafka.brokers];
const logger = pino({ level: process.env.HS_TEST_LOG_LEVEL ?? 'silent' });
const runId = `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
const topicName = (name: string): string => `hs-test.${name}.${runId}`;

const TOPICS = {
  groupCommit: topicName('group-commit'),
  outage: topicName('outage'),
  dlq: topicName('dlq'),
  close: topicName('close'),
  seek: topicName('seek'),
  transient: topicName('transient'),
};
const ALL_TOPICS = [
  { topic: TOPICS.groupCommit, numPartitions: 6 },
  { topic: TOPICS.outage, numPartitions: 3 },
  { topic: TOPICS.dlq, numPartitions: 3 },
  { topic: `${TOPICS.dlq}.dlq`, numPartitions: 1 },
  { topic: TOPICS.close, numPartitions: 3 },
  { topic: TOPICS.seek, numPartitions: 2 },
  { topic: TOPICS.transient, numPartitions: 2 },
  { topic: `${TOPICS.transient}.dlq`, numPartitions: 1 },
];
const groups: string[] = [];

function testKafka(clientId: string): Kafka {
  return createKafka({
    clientId,
    brokers: BROKERS,
    connectionTimeoutMs: 1000,
    requestTimeoutMs: 5000,
    logger,
  });
}

const kafka = testKafka('hs-test-kafka');

async function counterValue(registry: Registry, name: string): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (metric === undefined) return 0;
  return (await metric.get()).values.reduce((sum, v) => sum + v.value, 0);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await sleep(50);
  }
  return check();
}

interface ReadMessage {
  partition: number;
  message: KafkaMessage;
}

/** Reads a topic from the start with a throw-away group until `count` messages (+ a settle pause). */
async function readTopic(topic: string, count: number, timeoutMs = 20_000): Promise<ReadMessage[]> {
  const groupId = `hs-test-reader-${runId}-${randomBytes(3).toString('hex')}`;
  groups.push(groupId);
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 100 });
  const received: ReadMessage[] = [];
  try {
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        received.push({ partition, message });
      },
    });
    await waitFor(() => received.length >= count, timeoutMs);
    await sleep(500); // anything beyond `count` would show up now
    return received;
  } finally {
    await consumer.disconnect();
  }
}

beforeAll(async () => {
  const result = await ensureTopics(kafka, ALL_TOPICS, 30_000);
  expect(result.created.sort()).toEqual(ALL_TOPICS.map((t) => t.topic).sort());
  // Idempotent: a second call creates nothing.
  const again = await ensureTopics(kafka, ALL_TOPICS, 30_000);
  expect(again.created).toEqual([]);
});

afterAll(async () => {
  await deleteTopics(
    kafka,
    ALL_TOPICS.map((t) => t.topic),
    30_000,
  );
  const admin = kafka.admin();
  try {
    await admin.connect();
    await admin.deleteGroups(groups).catch(() => undefined);
  } finally {
    await admin.disconnect();
  }
});

describe('GroupCommitProducer against the real broker', () => {
  it('(a) group-commits 1,000 concurrent sends into few produce requests, every message once, per-key order kept', async () => {
    const registry = new Registry();
    const producer = new GroupCommitProducer({ kafka, logger, registry });
    await producer.connect();
    const keys = Array.from({ length: 50 }, (_, i) => `post-${i}`);
    const sends: Promise<SendResult>[] = [];
    const started = performance.now();
    for (let i = 0; i < 1000; i += 1) {
      const key = keys[i % keys.length] ?? 'post-0';
      const seq = Math.floor(i / keys.length);
      sends.push(producer.send(TOPICS.groupCommit, { key, value: JSON.stringify({ key, seq, i }) }));
    }
    const results = await Promise.all(sends);
    const elapsedMs = performance.now() - started;
    const requests = await counterValue(registry, 'hyperscale_kafka_produce_requests_total');
    console.log(
      `[kafka] (a) 1000 concurrent sends → ${requests} produce requests (sendBatch calls), ` +
        `${elapsedMs.toFixed(0)} ms, batch sizes ${producer.stats().batches} batches / last ${producer.stats().lastBatchSize}`,
    );
    expect(requests).toBeLessThanOrEqual(50);
    expect(requests).toBe(producer.stats().batches);
    for (const r of results) {
      expect(r.partition).toBeTypeOf('number');
      expect(r.offset).toMatch(/^\d+$/);
    }
    await producer.close();

    const read = await readTopic(TOPICS.groupCommit, 1000);
    expect(read).toHaveLength(1000);
    const byI = new Map<number, ReadMessage>();
    const lastSeq = new Map<string, number>();
    for (const m of read) {
      const body = JSON.parse(m.message.value?.toString() ?? '{}') as { key: string; seq: number; i: number };
      expect(byI.has(body.i)).toBe(false);
      byI.set(body.i, m);
      // readTopic appends in delivery order, which is offset order within a partition.
      expect(body.seq).toBe((lastSeq.get(body.key) ?? -1) + 1);
      lastSeq.set(body.key, body.seq);
    }
    // The partition/offset each send resolved with is exactly where the message is.
    results.forEach((r, i) => {
      const m = byI.get(i);
      expect(m?.partition).toBe(r.partition);
      expect(m?.message.offset).toBe(r.offset);
    });
  });

  it('(b) rejects in-flight and new sends with KafkaUnavailableError within sendTimeoutMs when the broker hangs and dies, then recovers', async () => {
    const registry = new Registry();
    const sendTimeoutMs = 2000;
    const marginMs = 500;
    const producer = new GroupCommitProducer({ kafka, logger, registry, sendTimeoutMs });
    await producer.connect();
    await producer.send(TOPICS.outage, { key: 'warm', value: 'up' });

    type Outcome = { ok: boolean; error?: unknown; elapsedMs: number };
    const timed = (p: Promise<SendResult>): Promise<Outcome> => {
      const t0 = performance.now();
      return p.then(
        () => ({ ok: true, elapsedMs: performance.now() - t0 }),
        (error: unknown) => ({ ok: false, error, elapsedMs: performance.now() - t0 }),
      );
    };
    try {
      // Freeze the broker so the next batch is certainly IN FLIGHT (sent, never answered) ...
      await stopServer('kafka', 'STOP');
      const inFlight = Array.from({ length: 200 }, (_, i) =>
        timed(producer.send(TOPICS.outage, { key: `k${i % 10}`, value: `in-flight-${i}` })),
      );
      await sleep(300);
      expect(producer.stats().inFlight).toBe(200);
      // ... then kill it: new sends meet a dead broker.
      await stopServer('kafka', 'KILL');
      const afterKill = Array.from({ length: 100 }, (_, i) =>
        timed(producer.send(TOPICS.outage, { key: `k${i % 10}`, value: `down-${i}` })),
      );
      await sleep(1000);
      const later = Array.from({ length: 100 }, (_, i) =>
        timed(producer.send(TOPICS.outage, { key: `k${i % 10}`, value: `later-${i}` })),
      );

      const inFlightOutcomes = await Promise.all(inFlight);
      const downOutcomes = [...(await Promise.all(afterKill)), ...(await Promise.all(later))];
      const all = [...inFlightOutcomes, ...downOutcomes];
      const worst = Math.max(...all.map((o) => o.elapsedMs));
      console.log(
        `[kafka] (b) broker frozen then killed: ${inFlightOutcomes.length} in-flight + ` +
          `${downOutcomes.length} new sends all rejected; slowest settle ${worst.toFixed(0)} ms ` +
          `(sendTimeoutMs ${sendTimeoutMs})`,
      );
      for (const o of all) {
        expect(o.ok).toBe(false);
        expect(o.error).toBeInstanceOf(KafkaUnavailableError);
        expect(o.elapsedMs).toBeLessThanOrEqual(sendTimeoutMs + marginMs);
      }
    } finally {
      await startServer('kafka');
    }

    // The producer reconnects by itself once the broker is back.
    let attempts = 0;
    let recovered: SendResult | undefined;
    const failures: string[] = [];
    const recoverStarted = performance.now();
    while (recovered === undefined && attempts < 20) {
      attempts += 1;
      try {
        recovered = await producer.send(TOPICS.outage, { key: 'k0', value: 'after-restart' });
      } catch (err) {
        expect(err).toBeInstanceOf(KafkaUnavailableError);
        failures.push(
          `${(err as Error).message}${(err as Error).cause instanceof Error ? ` ← ${((err as Error).cause as Error).message}` : ''}`,
        );
        await sleep(500);
      }
    }
    console.log(
      `[kafka] (b) after restart: send succeeded on attempt ${attempts} ` +
        `(${(performance.now() - recoverStarted).toFixed(0)} ms)` +
        (failures.length > 0 ? `; earlier failures: ${failures.join(' | ')}` : ''),
    );
    expect(recovered?.offset).toMatch(/^\d+$/);
    await producer.close();
  });

  it('(d) close() flushes queued messages at once, then rejects new sends', async () => {
    const registry = new Registry();
    const producer = new GroupCommitProducer({ kafka, logger, registry, lingerMs: 5000 });
    await producer.connect();
    const sends = Array.from({ length: 100 }, (_, i) =>
      producer.send(TOPICS.close, { key: `k${i % 7}`, value: `close-${i}` }),
    );
    expect(producer.stats().queued).toBe(100);
    const t0 = performance.now();
    await producer.close();
    const closeMs = performance.now() - t0;
    const results = await Promise.all(sends);
    console.log(`[kafka] (d) close() flushed 100 queued messages in ${closeMs.toFixed(0)} ms`);
    expect(closeMs).toBeLessThan(5000); // did not wait for the linger
    expect(results.every((r) => r.offset !== undefined)).toBe(true);
    await expect(producer.send(TOPICS.close, { key: 'x', value: 'late' })).rejects.toMatchObject({
      name: 'KafkaUnavailableError',
      reason: 'closed',
    });
    const read = await readTopic(TOPICS.close, 100);
    expect(read.map((m) => m.message.value?.toString()).sort()).toEqual(
      Array.from({ length: 100 }, (_, i) => `close-${i}`).sort(),
    );
  });
});

describe('BatchConsumer against the real broker', () => {
  it('(c) dead-letters poison messages after bounded retries, handles every other message exactly once in order, commits', async () => {
    const registry = new Registry();
    const producer = new GroupCommitProducer({ kafka, logger, registry });
    const total = 300;
    const poisonAt = new Set([7, 8, 120, 299]);
    const sent = await Promise.all(
      Array.from({ length: total }, (_, i) =>
        producer.send(TOPICS.dlq, {
          key: `k${i % 10}`,
          value: poisonAt.has(i) ? 'poison' : `ok-${i}`,
          headers: { 'x-test-id': String(i) },
        }),
      ),
    );
    await producer.close();

    const groupId = `hs-test-dlq-${runId}`;
    groups.push(groupId);
    const handled: { partition: number; offset: string; value: string | null }[] = [];
    const handlerCalls = { count: 0 };
    const handler = async (batch: PartitionBatch): Promise<void> => {
      handlerCalls.count += 1;
      expect(batch.messages[0]?.offset).toBe(batch.firstOffset);
      if (batch.messages.some((m) => m.value === 'poison')) throw new Error('poison message refused');
      for (const m of batch.messages)
        handled.push({ partition: m.partition, offset: m.offset, value: m.value });
    };
    const consumer = new BatchConsumer({
      kafka,
      groupId,
      handlers: { [TOPICS.dlq]: handler },
      logger,
      registry,
      maxBatchMessages: 40,
      maxBatchWaitMs: 100,
      retry: { maxAttempts: 3, initialDelayMs: 10, maxDelayMs: 50 },
    });
    await consumer.start();
    try {
      // Done = every good message handled AND every poison message parked (the last DLQ write may
      // still be in its retries after the last good message was handled).
      const allHandled = await waitFor(
        async () =>
          handled.length >= total - poisonAt.size &&
          (await counterValue(registry, 'hyperscale_kafka_dead_letters_total')) >= poisonAt.size,
        30_000,
      );
      expect(allHandled).toBe(true);
    } finally {
      await consumer.stop();
    }

    // Exactly once, and in offset order per partition.
    const seen = new Set(handled.map((h) => `${h.partition}/${h.offset}`));
    expect(seen.size).toBe(handled.length);
    expect(handled).toHaveLength(total - poisonAt.size);
    expect(handled.some((h) => h.value === 'poison')).toBe(false);
    const lastOffset = new Map<number, bigint>();
    for (const h of handled) {
      const prev = lastOffset.get(h.partition) ?? -1n;
      expect(BigInt(h.offset)).toBeGreaterThan(prev);
      lastOffset.set(h.partition, BigInt(h.offset));
    }

    // The poison messages are in the DLQ with their origin, error and attempts.
    const dead = await readTopic(`${TOPICS.dlq}.dlq`, poisonAt.size);
    expect(dead).toHaveLength(poisonAt.size);
    const deadById = new Map(dead.map((d) => [decodeHeaders(d.message.headers)['x-test-id'], d]));
    for (const i of poisonAt) {
      const d = deadById.get(String(i));
      expect(d).toBeDefined();
      const h = decodeHeaders(d?.message.headers);
      expect(d?.message.value?.toString()).toBe('poison');
      expect(h[DLQ_HEADERS.topic]).toBe(TOPICS.dlq);
      expect(h[DLQ_HEADERS.partition]).toBe(String(sent[i]?.partition));
      expect(h[DLQ_HEADERS.offset]).toBe(sent[i]?.offset);
      expect(h[DLQ_HEADERS.error]).toContain('poison message refused');
      expect(Number(h[DLQ_HEADERS.attempts])).toBeGreaterThanOrEqual(3);
      expect(h[DLQ_HEADERS.consumerGroup]).toBe(groupId);
    }
    const deadLetters = await counterValue(registry, 'hyperscale_kafka_dead_letters_total');
    const retries = await counterValue(registry, 'hyperscale_kafka_consumer_retries_total');
    console.log(
      `[kafka] (c) ${handled.length} handled once, ${deadLetters} dead-lettered, ` +
        `${handlerCalls.count} handler calls, ${retries} retries`,
    );
    expect(deadLetters).toBe(poisonAt.size);
    expect(retries).toBeGreaterThan(0);

    // Offsets are committed: the group's committed offsets are the partitions' ends ...
    const admin = kafka.admin();
    await admin.connect();
    try {
      const ends = await admin.fetchTopicOffsets(TOPICS.dlq);
      const committed = await admin.fetchOffsets({ groupId, topics: [TOPICS.dlq] });
      const committedByPartition = new Map(
        (committed[0]?.partitions ?? []).map((p) => [p.partition, p.offset]),
      );
      for (const end of ends) expect(committedByPartition.get(end.partition)).toBe(end.high);
    } finally {
      await admin.disconnect();
    }

    // ... and a new consumer in the same group receives nothing old, only what is produced now.
    const replayed: PartitionBatch[] = [];
    const second = new BatchConsumer({
      kafka,
      groupId,
      handlers: {
        [TOPICS.dlq]: async (batch) => {
          replayed.push(batch);
        },
      },
      logger,
      registry: new Registry(),
      maxBatchWaitMs: 100,
    });
    await second.start();
    try {
      await sleep(2000);
      expect(replayed).toEqual([]);
      const fresh = new GroupCommitProducer({ kafka, logger, registry: new Registry() });
      await fresh.send(TOPICS.dlq, { key: 'k1', value: 'fresh' });
      await fresh.close();
      expect(await waitFor(() => replayed.length > 0, 15_000)).toBe(true);
      expect(replayed.flatMap((b) => b.messages.map((m) => m.value))).toEqual(['fresh']);
    } finally {
      await second.stop();
    }
  });

  it('(e) onPartitionsAssigned can seek every partition to stored offsets before anything is delivered', async () => {
    const registry = new Registry();
    const producer = new GroupCommitProducer({ kafka, logger, registry });
    const sent = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        producer.send(TOPICS.seek, { key: `k${i % 4}`, value: `seek-${i}` }),
      ),
    );
    await producer.close();
    // "Stored" next offsets (as the writer keeps in MySQL): skip the first 5 of each partition.
    const stored = new Map<number, string>([
      [0, '5'],
      [1, '5'],
    ]);
    const groupId = `hs-test-seek-${runId}`;
    groups.push(groupId);
    const delivered: { partition: number; offset: string }[] = [];
    let hookCalls = 0;
    const consumer = new BatchConsumer({
      kafka,
      groupId,
      logger,
      registry,
      maxBatchWaitMs: 100,
      handlers: {
        [TOPICS.seek]: async (batch) => {
          for (const m of batch.messages) delivered.push({ partition: m.partition, offset: m.offset });
        },
      },
      onPartitionsAssigned: async (assignments, control) => {
        hookCalls += 1;
        await sleep(300); // a slow store read must not let Kafka's own position slip through
        for (const a of assignments) control.seekTo(a.topic, a.partition, stored.get(a.partition) ?? '0');
      },
    });
    await consumer.start();
    const expected = sent.filter((r) => BigInt(r.offset ?? '0') >= 5n).length;
    try {
      expect(await waitFor(() => delivered.length >= expected, 20_000)).toBe(true);
      await sleep(500);
    } finally {
      await consumer.stop();
    }
    expect(hookCalls).toBeGreaterThanOrEqual(1);
    expect(delivered).toHaveLength(expected);
    for (const p of [0, 1]) {
      const offsets = delivered.filter((d) => d.partition === p).map((d) => Number(d.offset));
      if (offsets.length > 0) expect(offsets[0]).toBe(5);
    }
  });

  it('(f) a transient failure (dependency down) never dead-letters: the partition pauses and resumes, nothing is lost or repeated', async () => {
    const registry = new Registry();
    const producer = new GroupCommitProducer({ kafka, logger, registry });
    const total = 120;
    await Promise.all(
      Array.from({ length: total }, (_, i) =>
        producer.send(TOPICS.transient, { key: `k${i % 6}`, value: `t-${i}` }),
      ),
    );
    await producer.close();
    const groupId = `hs-test-transient-${runId}`;
    groups.push(groupId);
    const dependencyDownUntil = Date.now() + 1500;
    const handled: { partition: number; offset: string }[] = [];
    let refused = 0;
    const consumer = new BatchConsumer({
      kafka,
      groupId,
      logger,
      registry,
      maxBatchMessages: 25,
      maxBatchWaitMs: 100,
      retry: { maxAttempts: 2, initialDelayMs: 10, maxDelayMs: 20 },
      pauseOnTransientMs: 200,
      handlers: {
        [TOPICS.transient]: async (batch) => {
          if (Date.now() < dependencyDownUntil) {
            refused += 1;
            throw new TransientHandlerError('database unavailable');
          }
          for (const m of batch.messages) handled.push({ partition: m.partition, offset: m.offset });
        },
      },
    });
    await consumer.start();
    try {
      expect(await waitFor(() => handled.length >= total, 20_000)).toBe(true);
      await sleep(500);
    } finally {
      await consumer.stop();
    }
    console.log(
      `[kafka] (f) ${refused} handler calls refused while the dependency was down, then ${handled.length} handled`,
    );
    expect(refused).toBeGreaterThan(0);
    expect(handled).toHaveLength(total);
    expect(new Set(handled.map((h) => `${h.partition}/${h.offset}`)).size).toBe(total);
    for (const p of [0, 1]) {
      const offsets = handled.filter((h) => h.partition === p).map((h) => Number(h.offset));
      expect(offsets).toEqual(offsets.map((_, i) => i));
    }
    expect(await counterValue(registry, 'hyperscale_kafka_dead_letters_total')).toBe(0);
  });
});
