import type { PartitionMetadata, ProducerBatch, ProducerConfig, RecordMetadata } from 'kafkajs';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { KafkaBackpressureError, KafkaUnavailableError } from './errors.js';
import { GroupCommitProducer, groupByTopic } from './group-commit-producer.js';
import type { KafkaProducerPort, SendResult } from './group-commit-producer.js';

const PARTITIONS = 3;
const partitionMetadata: PartitionMetadata[] = Array.from({ length: PARTITIONS }, (_, i) => ({
  partitionErrorCode: 0,
  partitionId: i,
  leader: 1,
  replicas: [1],
  isr: [1],
}));

type Mode = 'ack' | 'hang' | 'fail';

interface Call {
  batch: ProducerBatch;
  /** Partition chosen per message, in topicMessages order. */
  partitions: number[];
  ack: () => void;
  fail: (err: Error) => void;
}

/** A fake kafkajs producer: runs the configured partitioner and lets the test settle each call. */
class FakeProducer implements KafkaProducerPort {
  disconnected = false;
  constructor(
    readonly config: ProducerConfig,
    private readonly world: FakeKafka,
  ) {}
  async connect(): Promise<void> {}
  async disconnect(): Promise<void> {
    this.disconnected = true;
  }
  sendBatch(batch: ProducerBatch): Promise<RecordMetadata[]> {
    const partitioner = this.config.createPartitioner?.();
    if (partitioner === undefined) throw new Error('no partitioner');
    const partitions: number[] = [];
    const counts = new Map<string, { topic: string; partition: number; n: number }>();
    for (const { topic, messages } of batch.topicMessages ?? []) {
      for (const message of messages) {
        const partition = partitioner({ topic, partitionMetadata, message });
        partitions.push(partition);
        const key = `${topic}/${partition}`;
        const c = counts.get(key) ?? { topic, partition, n: 0 };
        c.n += 1;
        counts.set(key, c);
      }
    }
    this.world.inFlight += 1;
    this.world.maxInFlight = Math.max(this.world.maxInFlight, this.world.inFlight);
    return new Promise<RecordMetadata[]>((resolve, reject) => {
      const done = (): void => {
        this.world.inFlight -= 1;
      };
      const call: Call = {
        batch,
        partitions,
        ack: () => {
          done();
          resolve(
            [...counts.values()].map(({ topic, partition, n }) => {
              const key = `${topic}/${partition}`;
              const base = this.world.logEnd.get(key) ?? 0;
              this.world.logEnd.set(key, base + n);
              return { topicName: topic, partition, errorCode: 0, baseOffset: String(base) };
            }),
          );
        },
        fail: (err) => {
          done();
          reject(err);
        },
      };
      this.world.calls.push(call);
      if (this.world.mode === 'ack') call.ack();
      if (this.world.mode === 'fail') call.fail(new Error('broker said no'));
    });
  }
}

class FakeKafka {
  mode: Mode = 'ack';
  calls: Call[] = [];
  producers: FakeProducer[] = [];
  inFlight = 0;
  maxInFlight = 0;
  logEnd = new Map<string, number>();
  producer(config?: ProducerConfig): FakeProducer {
    const p = new FakeProducer(config ?? {}, this);
    this.producers.push(p);
    return p;
  }
}

const logger = pino({ level: 'silent' });

function settleState<T>(promise: Promise<T>): {
  value?: T;
  error?: unknown;
  settledAt?: number;
} {
  const state: { value?: T; error?: unknown; settledAt?: number } = {};
  promise.then(
    (value) => {
      state.value = value;
      state.settledAt = Date.now();
    },
    (error: unknown) => {
      state.error = error;
      state.settledAt = Date.now();
    },
  );
  return state;
}

async function metricValue(registry: Registry, name: string): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (metric === undefined) throw new Error(`no metric ${name}`);
  const data = await metric.get();
  return data.values.reduce((sum, v) => sum + v.value, 0);
}

describe('GroupCommitProducer (fake kafkajs, fake clock)', () => {
  let kafka: FakeKafka;
  let registry: Registry;

  beforeEach(() => {
    vi.useFakeTimers({ now: 1_000_000 });
    kafka = new FakeKafka();
    registry = new Registry();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('turns concurrent sends into one acks=all sendBatch after lingerMs and resolves each with its offset', async () => {
    const producer = new GroupCommitProducer({ kafka, logger, registry, lingerMs: 2 });
    const keys = ['a', 'b', 'c', 'd'];
    const results = Array.from({ length: 100 }, (_, i) =>
      producer.send('t', { key: keys[i % keys.length] ?? 'a', value: `v${i}` }),
    );
    await vi.advanceTimersByTimeAsync(1);
    expect(kafka.calls).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(kafka.calls).toHaveLength(1);
    const resolved = await Promise.all(results);

    const call = kafka.calls[0]!;
    expect(call.batch.acks).toBe(-1);
    expect(call.batch.topicMessages).toHaveLength(1);
    expect(call.batch.topicMessages?.[0]?.messages.map((m) => m.value)).toEqual(
      Array.from({ length: 100 }, (_, i) => `v${i}`),
    );
    const config = kafka.producers[0]!.config;
    expect(config.idempotent).toBe(true);
    expect(config.maxInFlightRequests).toBe(1);
    expect(config.retry?.retries).toBeGreaterThan(0);

    // Offsets: per partition 0..n-1 in call order; same key → same partition, increasing offsets.
    const perPartition = new Map<number, string[]>();
    resolved.forEach((r: SendResult, i) => {
      expect(r.partition).toBe(call.partitions[i]);
      perPartition.set(r.partition!, [...(perPartition.get(r.partition!) ?? []), r.offset!]);
    });
    for (const offsets of perPartition.values()) {
      expect(offsets).toEqual(offsets.map((_, i) => String(i)));
    }
    expect(await metricValue(registry, 'hyperscale_kafka_produce_requests_total')).toBe(1);
    expect(await metricValue(registry, 'hyperscale_kafka_producer_queued')).toBe(0);
    expect(producer.stats()).toMatchObject({ batches: 1, acknowledged: 100, failed: 0 });
  });

  it('sends as soon as maxBatch is reached and keeps exactly one batch in flight', async () => {
    kafka.mode = 'hang';
    const producer = new GroupCommitProducer({ kafka, logger, registry, maxBatch: 10 });
    const results = Array.from({ length: 25 }, (_, i) =>
      settleState(producer.send('t', { key: 'k', value: String(i) })),
    );
    await vi.advanceTimersByTimeAsync(0);
    expect(kafka.calls).toHaveLength(1);
    expect(kafka.calls[0]!.batch.topicMessages?.[0]?.messages).toHaveLength(10);
    await vi.advanceTimersByTimeAsync(50); // linger long passed, but one batch is in flight
    expect(kafka.calls).toHaveLength(1);
    expect(producer.stats()).toMatchObject({ queued: 15, inFlight: 10 });

    kafka.calls[0]!.ack();
    await vi.advanceTimersByTimeAsync(0);
    expect(kafka.calls).toHaveLength(2);
    expect(kafka.calls[1]!.batch.topicMessages?.[0]?.messages).toHaveLength(10);
    kafka.calls[1]!.ack();
    await vi.advanceTimersByTimeAsync(0);
    expect(kafka.calls).toHaveLength(3);
    expect(kafka.calls[2]!.batch.topicMessages?.[0]?.messages).toHaveLength(5);
    kafka.calls[2]!.ack();
    await vi.advanceTimersByTimeAsync(0);

    expect(kafka.maxInFlight).toBe(1);
    // One key: one partition, offsets strictly in call order.
    expect(results.map((r) => r.value?.offset)).toEqual(results.map((_, i) => String(i)));
    expect(await metricValue(registry, 'hyperscale_kafka_produce_requests_total')).toBe(3);
  });

  it('groups per topic in call order (kafkajs needs one entry per topic)', () => {
    const m = (v: string) => ({ key: null, value: v });
    expect(
      groupByTopic([
        { topic: 'a', message: m('1') },
        { topic: 'b', message: m('2') },
        { topic: 'a', message: m('3') },
      ]),
    ).toEqual([
      { topic: 'a', messages: [m('1'), m('3')] },
      { topic: 'b', messages: [m('2')] },
    ]);
  });

  it('rejects in-flight and queued sends with KafkaUnavailableError at their own deadline when kafkajs hangs', async () => {
    kafka.mode = 'hang';
    const producer = new GroupCommitProducer({ kafka, logger, registry, sendTimeoutMs: 3000 });
    const start = Date.now();
    const first = settleState(producer.send('t', { key: 'k', value: '1' }));
    await vi.advanceTimersByTimeAsync(100);
    const second = settleState(producer.send('t', { key: 'k', value: '2' }));
    await vi.advanceTimersByTimeAsync(2899);
    expect(first.settledAt).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(first.error).toBeInstanceOf(KafkaUnavailableError);
    expect((first.error as KafkaUnavailableError).reason).toBe('timeout');
    expect(first.settledAt! - start).toBe(3000);
    // Handed to kafkajs: it may have landed (a lost acknowledgment) — never "certainly not sent".
    expect((first.error as KafkaUnavailableError).maybeWritten).toBe(true);
    const firstSettled = settleState((first.error as KafkaUnavailableError).settled);
    expect(second.settledAt).toBeUndefined();
    await vi.advanceTimersByTimeAsync(100);
    expect(second.error).toBeInstanceOf(KafkaUnavailableError);
    expect(second.settledAt! - start).toBe(3100);
    // The queued message expired before it could be sent: it is never sent, and says so.
    expect((second.error as KafkaUnavailableError).maybeWritten).toBe(false);
    expect(kafka.calls).toHaveLength(1);
    expect(producer.stats().queued).toBe(0);

    // kafkajs finally acknowledges the first batch: nothing is settled twice, pipeline continues.
    expect(firstSettled.settledAt).toBeUndefined();
    kafka.calls[0]!.ack();
    kafka.mode = 'ack';
    await vi.advanceTimersByTimeAsync(0);
    expect(firstSettled.settledAt).toBeDefined();
    const third = producer.send('t', { key: 'k', value: '3' });
    await vi.advanceTimersByTimeAsync(2);
    await expect(third).resolves.toMatchObject({ offset: '1' });
    expect(await metricValue(registry, 'hyperscale_kafka_produce_errors_total')).toBe(2);
  });

  it('rejects the whole batch on failure and uses a fresh kafkajs producer for the next batch', async () => {
    kafka.mode = 'fail';
    const producer = new GroupCommitProducer({ kafka, logger, registry });
    const a = producer.send('t', { key: 'k', value: '1' });
    const b = producer.send('u', { key: 'k', value: '2' });
    const expectA = expect(a).rejects.toMatchObject({
      name: 'KafkaUnavailableError',
      reason: 'send-failed',
      maybeWritten: true,
    });
    const expectB = expect(b).rejects.toBeInstanceOf(KafkaUnavailableError);
    await vi.advanceTimersByTimeAsync(2);
    await expectA;
    await expectB;
    expect(kafka.producers[0]!.disconnected).toBe(true);

    kafka.mode = 'ack';
    const c = producer.send('t', { key: 'k', value: '3' });
    await vi.advanceTimersByTimeAsync(2);
    await expect(c).resolves.toMatchObject({ offset: '0' });
    expect(kafka.producers).toHaveLength(2);
    const errors = await registry.getSingleMetric('hyperscale_kafka_produce_errors_total')!.get();
    expect(errors.values.map((v) => [v.labels.topic, v.value]).sort()).toEqual([
      ['t', 1],
      ['u', 1],
    ]);
  });

  it('rejects at once with KafkaBackpressureError beyond maxQueued (queued + in flight)', async () => {
    kafka.mode = 'hang';
    const producer = new GroupCommitProducer({ kafka, logger, registry, maxQueued: 3, maxBatch: 2 });
    const accepted = [1, 2, 3].map((i) => settleState(producer.send('t', { key: 'k', value: String(i) })));
    await vi.advanceTimersByTimeAsync(0);
    expect(producer.stats()).toMatchObject({ inFlight: 2, queued: 1 });
    await expect(producer.send('t', { key: 'k', value: '4' })).rejects.toBeInstanceOf(KafkaBackpressureError);
    expect(producer.stats().rejectedBackpressure).toBe(1);
    kafka.calls[0]!.ack();
    kafka.mode = 'ack';
    await vi.advanceTimersByTimeAsync(5);
    expect(accepted.every((s) => s.value !== undefined)).toBe(true);
    const later = producer.send('t', { key: 'k', value: '5' });
    await vi.advanceTimersByTimeAsync(2);
    await expect(later).resolves.toMatchObject({ offset: '3' });
  });

  it('close() sends what is queued without waiting for the linger, then rejects new sends', async () => {
    const producer = new GroupCommitProducer({ kafka, logger, registry, lingerMs: 1000 });
    await producer.connect();
    const queued = [1, 2, 3].map((i) => producer.send('t', { key: null, value: String(i) }));
    const closing = producer.close();
    await vi.advanceTimersByTimeAsync(0);
    await closing;
    await expect(Promise.all(queued)).resolves.toHaveLength(3);
    expect(Date.now()).toBe(1_000_000);
    expect(kafka.calls).toHaveLength(1);
    expect(kafka.producers[0]!.disconnected).toBe(true);
    await expect(producer.send('t', { key: null, value: 'late' })).rejects.toMatchObject({
      reason: 'closed',
      maybeWritten: false,
    });
    expect(producer.stats().closed).toBe(true);
  });

  it('close() is bounded when kafkajs hangs', async () => {
    kafka.mode = 'hang';
    const producer = new GroupCommitProducer({
      kafka,
      logger,
      registry,
      sendTimeoutMs: 10_000,
      closeTimeoutMs: 500,
    });
    const pending = settleState(producer.send('t', { key: null, value: 'x' }));
    let closed = false;
    void producer.close().then(() => {
      closed = true;
    });
    await vi.advanceTimersByTimeAsync(499);
    expect(closed).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(closed).toBe(true);
    expect(pending.error).toMatchObject({ reason: 'closed', maybeWritten: true });
  });

  it('says "never sent" when the producer cannot connect', async () => {
    kafka.producer = (config?: ProducerConfig) => {
      const made = new FakeProducer(config ?? {}, kafka);
      made.connect = () => Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:9092'));
      kafka.producers.push(made);
      return made;
    };
    const producer = new GroupCommitProducer({ kafka, logger, registry });
    const sent = settleState(producer.send('t', { key: 'k', value: '1' }));
    await vi.advanceTimersByTimeAsync(2);
    expect(sent.error).toMatchObject({ reason: 'connect-failed', maybeWritten: false });
    expect(kafka.calls).toHaveLength(0);
  });
});
