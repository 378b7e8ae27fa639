import { Partitioners } from 'kafkajs';
import type {
  ICustomPartitioner,
  IHeaders,
  Message,
  ProducerBatch,
  ProducerConfig,
  RecordMetadata,
  TopicMessages,
} from 'kafkajs';
import type { Logger } from 'pino';
import type { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { KafkaBackpressureError, KafkaUnavailableError, errorMessage } from './errors.js';
import { BATCH_SIZE_BUCKETS, DURATION_BUCKETS, counter, gauge, histogram } from './metrics.js';
import { assignOffsets } from './offsets.js';
import type { AssignedOffset } from './offsets.js';
import { withTimeout } from './timeout.js';

/** One message to produce. `key` decides the partition (same key → same partition → ordered). */
export interface ProduceRecord {
  key: string | Buffer | null;
  value: string | Buffer;
  headers?: IHeaders;
}

/**
 * Where an acknowledged message was written. Both fields are filled whenever kafkajs reports the
 * partition's base offset (always with acks=all on kafkajs 2.2.4); they are omitted otherwise.
 */
export type SendResult = AssignedOffset;

/** The part of a kafkajs producer this class uses (a kafkajs `Producer` satisfies it). */
export interface KafkaProducerPort {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  sendBatch(batch: ProducerBatch): Promise<RecordMetadata[]>;
}

/** Something that makes producers — a kafkajs `Kafka` client (see createKafka). */
export interface KafkaProducerFactory {
  producer(config?: ProducerConfig): KafkaProducerPort;
}

/** Options of {@link GroupCommitProducer}. */
export interface GroupCommitProducerOptions {
  kafka: KafkaProducerFactory;
  logger: Logger;
  registry: Registry;
  /** How long the first queued message waits for company before the batch is sent. Default 2. */
  lingerMs?: number;
  /** A batch is sent at once when it holds this many messages. Default 1000. */
  maxBatch?: number;
  /** A `send` rejects with KafkaUnavailableError if not acknowledged this long after the call. Default 3000. */
  sendTimeoutMs?: number;
  /** Bound on queued + in-flight messages; beyond it `send` rejects at once. Default 50 000. */
  maxQueued?: number;
  /** `close()` waits this long for queued messages to be acknowledged. Default sendTimeoutMs + 1000. */
  closeTimeoutMs?: number;
  /** Bound on connecting a (new) kafkajs producer. Default sendTimeoutMs. */
  connectTimeoutMs?: number;
  /** kafkajs retries inside one sendBatch (backoff 100 ms … 1 s). Default 2. */
  retries?: number;
  /**
   * If kafkajs has not settled a sendBatch after this long (it should, its retries are bounded),
   * the producer is discarded so the pipeline cannot stall. Default max(30 000, 3 × sendTimeoutMs).
   */
  abandonAfterMs?: number;
}

/** A snapshot of one producer's state and lifetime counts. */
export interface GroupCommitProducerStats {
  queued: number;
  inFlight: number;
  /** sendBatch calls made (= produce requests from this producer's point of view). */
  batches: number;
  acknowledged: number;
  failed: number;
  rejectedBackpressure: number;
  lastBatchSize: number;
  closed: boolean;
}

interface Pending {
  topic: string;
  message: Message;
  enqueuedAt: number;
  deadline: number;
  settled: boolean;
  resolve: (result: SendResult) => void;
  reject: (err: Error) => void;
}

/**
 * In-process group commit for Kafka: many concurrent `send` calls become ONE acks=all produce
 * request, so durability costs one round trip per batch instead of per request.
 *
 * Contract of `send`:
 * - resolves only after the batch carrying the message was acknowledged by all in-sync replicas
 *   (idempotent producer, acks=-1), with its partition and offset;
 * - rejects with KafkaUnavailableError when the batch fails or no acknowledgment arrived within
 *   `sendTimeoutMs` of the call — it never waits longer, whatever kafkajs does internally. The
 *   error says whether the message may have been written (`maybeWritten`): false when it expired
 *   in the queue or the producer could not connect (it is then never sent), true when its batch
 *   was handed to kafkajs (it may have landed, or land later: at-least-once, consumers de-duplicate);
 * - rejects at once with KafkaBackpressureError (message not queued) when `maxQueued` messages are
 *   queued or in flight, and with KafkaUnavailableError('closed') after `close()`.
 *
 * Ordering: messages of one key reach their partition in call order. Only ONE batch is in flight at
 * a time; the next batch accumulates meanwhile (that is where the batching comes from under load).
 * Why not several in flight: kafkajs reverts sequence numbers when a request fails and retries
 * per call, so a second request overtaking a failed-then-retried first one would reorder a key
 * (and Kafka's 5-in-flight guarantee relies on the Java client's in-order retry, which kafkajs does
 * not implement). A batch that timed out for its callers keeps the slot until kafkajs settles it
 * (bounded by `retries`/request timeouts, hard-capped by `abandonAfterMs`), so a later batch can
 * never overtake it. Messages still QUEUED when their deadline passes are dropped, never sent.
 *
 * After any failed batch the kafkajs producer is discarded and the next batch uses a fresh one
 * (new producer id): kafkajs rolls sequence numbers back on failure even when the broker did append
 * the batch, and reusing them would let the broker silently "de-duplicate" a NEW batch of the same
 * size as the lost-ack one — acknowledging messages it never stored.
 */
export class GroupCommitProducer {
  private readonly kafka: KafkaProducerFactory;
  private readonly logger: Logger;
  private readonly lingerMs: number;
  private readonly maxBatch: number;
  private readonly sendTimeoutMs: number;
  private readonly maxQueued: number;
  private readonly closeTimeoutMs: number;
  private readonly connectTimeoutMs: number;
  private readonly retries: number;
  private readonly abandonAfterMs: number;

  private readonly batchSizeHistogram: Histogram;
  private readonly durationHistogram: Histogram;
  private readonly errorsCounter: Counter<'topic'>;
  private readonly queuedGauge: Gauge;
  private readonly requestsCounter: Counter;

  private readonly queue: Pending[] = [];
  private inflight: Pending[] | null = null;
  /** Resolves when kafkajs has settled the batch in flight (acknowledged, failed or abandoned). */
  private inflightSettled: Promise<void> = Promise.resolve();
  private producer: KafkaProducerPort | null = null;
  private connecting: Promise<KafkaProducerPort> | null = null;
  private lingerTimer: NodeJS.Timeout | null = null;
  private deadlineTimer: NodeJS.Timeout | null = null;
  private closed = false;
  private shutDown = false;
  private closing: Promise<void> | null = null;
  private idleWaiters: (() => void)[] = [];
  /** Partition kafkajs' partitioner chose for each message object (filled during sendBatch). */
  private readonly partitionOf = new WeakMap<Message, number>();
  private readonly counts = { batches: 0, acknowledged: 0, failed: 0, backpressure: 0, lastBatch: 0 };

  constructor(options: GroupCommitProducerOptions) {
    this.kafka = options.kafka;
    this.logger = options.logger.child({ component: 'kafka-producer' });
    this.lingerMs = options.lingerMs ?? 2;
    this.maxBatch = options.maxBatch ?? 1000;
    this.sendTimeoutMs = options.sendTimeoutMs ?? 3000;
    this.maxQueued = options.maxQueued ?? 50_000;
    this.closeTimeoutMs = options.closeTimeoutMs ?? this.sendTimeoutMs + 1000;
    this.connectTimeoutMs = options.connectTimeoutMs ?? this.sendTimeoutMs;
    this.retries = options.retries ?? 2;
    this.abandonAfterMs = options.abandonAfterMs ?? Math.max(30_000, 3 * this.sendTimeoutMs);
    if (this.lingerMs < 0 || !Number.isInteger(this.maxBatch) || this.maxBatch < 1) {
      throw new RangeError('GroupCommitProducer: lingerMs must be ≥ 0 and maxBatch an integer ≥ 1');
    }
    if (this.sendTimeoutMs <= 0 || this.maxQueued < 1 || this.retries < 1) {
      throw new RangeError('GroupCommitProducer: sendTimeoutMs, maxQueued and retries must be ≥ 1');
    }

    const registry = options.registry;
    this.batchSizeHistogram = histogram(
      registry,
      'hyperscale_kafka_produce_batch_size',
      'Messages per produce request sent by the group-commit producer.',
      BATCH_SIZE_BUCKETS,
    );
    this.durationHistogram = histogram(
      registry,
      'hyperscale_kafka_produce_duration_seconds',
      'Time from dispatching a batch to its acknowledgment or failure (connect included).',
      DURATION_BUCKETS,
    );
    this.errorsCounter = counter(
      registry,
      'hyperscale_kafka_produce_errors_total',
      'Messages whose send() rejected (failure, timeout, back-pressure, closed).',
      ['topic'],
    );
    this.queuedGauge = gauge(
      registry,
      'hyperscale_kafka_producer_queued',
      'Messages accepted by send() and not yet released (queued + in flight).',
    );
    this.requestsCounter = counter(
      registry,
      'hyperscale_kafka_produce_requests_total',
      'sendBatch calls (produce requests) made by group-commit producers.',
    );
  }

  /**
   * Connects the kafkajs producer now (optional: batches connect lazily). Rejects with
   * KafkaUnavailableError('connect-failed') within `connectTimeoutMs` if the broker is unreachable.
   */
  async connect(): Promise<void> {
    await this.acquireProducer();
  }

  /**
   * Queues one message for the next batch; see the class comment for the full contract. The
   * record's key/value/headers are passed to kafkajs as they are (not copied).
   */
  send(topic: string, record: ProduceRecord): Promise<SendResult> {
    if (this.closed) {
      this.errorsCounter.inc({ topic });
      return Promise.reject(
        new KafkaUnavailableError('closed', 'Kafka producer is closed', { maybeWritten: false }),
      );
    }
    if (this.queue.length + (this.inflight?.length ?? 0) >= this.maxQueued) {
      this.counts.backpressure += 1;
      this.errorsCounter.inc({ topic });
      return Promise.reject(new KafkaBackpressureError(this.maxQueued));
    }
    return new Promise<SendResult>((resolve, reject) => {
      const now = Date.now();
      const message: Message = { key: record.key, value: record.value };
      if (record.headers !== undefined) message.headers = record.headers;
      this.queue.push({
        topic,
        message,
        enqueuedAt: now,
        deadline: now + this.sendTimeoutMs,
        settled: false,
        resolve,
        reject,
      });
      this.queuedGauge.inc();
      this.armDeadlineTimer();
      this.maybeFlush();
    });
  }

  /** Counts and current queue depth of this producer (the metrics aggregate all producers). */
  stats(): GroupCommitProducerStats {
    return {
      queued: this.queue.length,
      inFlight: this.inflight?.length ?? 0,
      batches: this.counts.batches,
      acknowledged: this.counts.acknowledged,
      failed: this.counts.failed,
      rejectedBackpressure: this.counts.backpressure,
      lastBatchSize: this.counts.lastBatch,
      closed: this.closed,
    };
  }

  /**
   * Stops accepting messages, sends what is queued at once (no linger) and waits up to
   * `closeTimeoutMs` for the acknowledgments; messages still unacknowledged then are rejected with
   * KafkaUnavailableError('closed'). Finally disconnects (bounded). Idempotent; never rejects.
   */
  close(): Promise<void> {
    if (this.closing !== null) return this.closing;
    this.closed = true;
    this.closing = this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    const started = Date.now();
    this.maybeFlush();
    await this.waitIdle(this.closeTimeoutMs);
    this.shutDown = true;
    const closedError = (maybeWritten: boolean) =>
      new KafkaUnavailableError('closed', 'Kafka producer closed before the message was acknowledged', {
        maybeWritten,
        settled: this.inflightSettled,
      });
    const leftovers = this.queue.splice(0);
    if (leftovers.length > 0) this.queuedGauge.dec(leftovers.length);
    const neverSent = closedError(false);
    for (const entry of leftovers) this.settle(entry, neverSent);
    const inKafkajs = closedError(true);
    for (const entry of this.inflight ?? []) this.settle(entry, inKafkajs);
    this.clearTimers();
    const producer = this.producer;
    this.producer = null;
    if (producer !== null) await this.disconnectQuietly(producer, started);
  }

  private async disconnectQuietly(producer: KafkaProducerPort, since = Date.now()): Promise<void> {
    const budget = Math.max(1000, this.closeTimeoutMs - (Date.now() - since));
    try {
      await withTimeout(
        producer.disconnect(),
        budget,
        () => new Error(`disconnect did not finish within ${budget} ms`),
      );
    } catch (err) {
      this.logger.warn({ err }, 'kafka producer disconnect failed');
    }
  }

  private waitIdle(timeoutMs: number): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, timeoutMs);
      const waiters = this.idleWaiters;
      function done(): void {
        clearTimeout(timer);
        const i = waiters.indexOf(done);
        if (i >= 0) waiters.splice(i, 1);
        resolve();
      }
      waiters.push(done);
    });
  }

  private isIdle(): boolean {
    return this.queue.length === 0 && this.inflight === null;
  }

  private notifyIdle(): void {
    if (!this.isIdle()) return;
    for (const waiter of this.idleWaiters.splice(0)) waiter();
  }

  /** Sends the next batch if none is in flight and the queue is due (full, lingered, or closing). */
  private maybeFlush(): void {
    if (this.inflight !== null) return;
    const head = this.queue[0];
    if (head === undefined) return;
    const waited = Date.now() - head.enqueuedAt;
    if (this.closed || this.queue.length >= this.maxBatch || waited >= this.lingerMs) {
      this.dispatch();
      return;
    }
    if (this.lingerTimer === null) {
      this.lingerTimer = setTimeout(() => {
        this.lingerTimer = null;
        this.maybeFlush();
      }, this.lingerMs - waited);
    }
  }

  private dispatch(): void {
    if (this.lingerTimer !== null) {
      clearTimeout(this.lingerTimer);
      this.lingerTimer = null;
    }
    const batch = this.queue.splice(0, this.maxBatch);
    this.inflight = batch;
    this.counts.batches += 1;
    this.counts.lastBatch = batch.length;
    this.batchSizeHistogram.observe(batch.length);
    const stopTimer = this.durationHistogram.startTimer();
    this.inflightSettled = this.runBatch(batch)
      .then(
        (acks) => this.onAcknowledged(batch, acks),
        (err: unknown) => this.onFailed(batch, err),
      )
      .finally(() => {
        stopTimer();
        this.inflight = null;
        this.queuedGauge.dec(batch.length);
        this.armDeadlineTimer();
        this.maybeFlush();
        this.notifyIdle();
      });
  }

  private async runBatch(batch: Pending[]): Promise<RecordMetadata[]> {
    // Its failures carry maybeWritten: false — nothing was handed to kafkajs.
    const producer = await this.acquireProducer();
    const sending = producer.sendBatch({
      acks: -1,
      timeout: this.sendTimeoutMs,
      topicMessages: groupByTopic(batch),
    });
    this.requestsCounter.inc();
    return withTimeout(
      sending,
      this.abandonAfterMs,
      () =>
        new KafkaUnavailableError(
          'timeout',
          `kafkajs did not settle a produce within ${this.abandonAfterMs} ms; producer discarded`,
          { maybeWritten: true },
        ),
    );
  }

  private onAcknowledged(batch: Pending[], acks: RecordMetadata[]): void {
    const assigned = assignOffsets(
      batch.map((entry) => ({ topic: entry.topic, partition: this.partitionOf.get(entry.message) })),
      acks,
    );
    batch.forEach((entry, i) => this.settle(entry, null, assigned[i] ?? {}));
  }

  private onFailed(batch: Pending[], err: unknown): void {
    const error =
      err instanceof KafkaUnavailableError
        ? err
        : // kafkajs may have appended the batch before failing (a lost acknowledgment).
          new KafkaUnavailableError('send-failed', `Kafka produce failed: ${errorMessage(err)}`, {
            cause: err,
            maybeWritten: true,
          });
    this.logger.warn(
      { err: error, batchSize: batch.length, reason: error.reason },
      'kafka produce batch failed; discarding the producer session',
    );
    this.discardProducer();
    for (const entry of batch) this.settle(entry, error);
  }

  private settle(entry: Pending, err: Error | null, result: SendResult = {}): void {
    if (entry.settled) return;
    entry.settled = true;
    if (err !== null) {
      this.counts.failed += 1;
      this.errorsCounter.inc({ topic: entry.topic });
      entry.reject(err);
    } else {
      this.counts.acknowledged += 1;
      entry.resolve(result);
    }
  }

  /** Returns the connected kafkajs producer, creating and connecting one if needed (bounded). */
  private acquireProducer(): Promise<KafkaProducerPort> {
    if (this.shutDown) {
      return Promise.reject(
        new KafkaUnavailableError('closed', 'Kafka producer is closed', { maybeWritten: false }),
      );
    }
    if (this.producer !== null) return Promise.resolve(this.producer);
    if (this.connecting !== null) return this.connecting;
    const producer = this.kafka.producer({
      idempotent: true,
      // kafkajs requires ≤ 1 in-flight request per connection for idempotence to keep order.
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      // Bounded on purpose (kafkajs would retry an idempotent producer forever); callers have
      // their own deadline and the discard-on-failure above keeps sequence numbers safe.
      retry: { retries: this.retries, initialRetryTime: 100, maxRetryTime: 1000 },
      createPartitioner: this.recordingPartitioner,
    });
    const connecting = withTimeout(
      producer.connect(),
      this.connectTimeoutMs,
      () =>
        new KafkaUnavailableError(
          'connect-failed',
          `Kafka producer did not connect within ${this.connectTimeoutMs} ms`,
          { maybeWritten: false },
        ),
    ).then(
      () => {
        this.connecting = null;
        if (this.shutDown) {
          void this.disconnectQuietly(producer);
          throw new KafkaUnavailableError('closed', 'Kafka producer is closed', { maybeWritten: false });
        }
        this.producer = producer;
        return producer;
      },
      (err: unknown) => {
        this.connecting = null;
        void this.disconnectQuietly(producer);
        throw err instanceof KafkaUnavailableError
          ? err
          : new KafkaUnavailableError(
              'connect-failed',
              `Kafka producer connect failed: ${errorMessage(err)}`,
              { cause: err, maybeWritten: false },
            );
      },
    );
    this.connecting = connecting;
    return connecting;
  }

  private discardProducer(): void {
    const producer = this.producer;
    this.producer = null;
    if (producer !== null) void this.disconnectQuietly(producer);
  }

  /** kafkajs' default (Java-compatible murmur2) partitioner, remembering each message's partition. */
  private readonly recordingPartitioner: ICustomPartitioner = () => {
    const partition = Partitioners.DefaultPartitioner();
    return (args) => {
      const chosen = partition(args);
      this.partitionOf.set(args.message, chosen);
      return chosen;
    };
  };

  /** Keeps one timer armed for the earliest deadline among unsettled messages. */
  private armDeadlineTimer(): void {
    if (this.deadlineTimer !== null) return;
    const next = this.earliestDeadline();
    if (next === undefined) return;
    this.deadlineTimer = setTimeout(
      () => {
        this.deadlineTimer = null;
        this.expireOverdue();
        this.armDeadlineTimer();
      },
      Math.max(0, next - Date.now()),
    );
  }

  private earliestDeadline(): number | undefined {
    for (const entry of this.inflight ?? []) if (!entry.settled) return entry.deadline;
    return this.queue[0]?.deadline;
  }

  /**
   * Rejects every message whose deadline passed. Deadlines grow with call order and in-flight
   * messages are older than queued ones, so the overdue messages are a prefix of in-flight + queue.
   * Overdue in-flight messages stay in their batch (kafkajs still owns it); overdue queued ones are
   * removed and never sent.
   */
  private expireOverdue(): void {
    const now = Date.now();
    const timeout = (maybeWritten: boolean) =>
      new KafkaUnavailableError('timeout', `Kafka did not acknowledge within ${this.sendTimeoutMs} ms`, {
        maybeWritten,
        settled: this.inflightSettled,
      });
    const inKafkajs = timeout(true);
    for (const entry of this.inflight ?? []) {
      if (entry.deadline > now) break;
      this.settle(entry, inKafkajs);
    }
    let overdue = 0;
    while (overdue < this.queue.length && (this.queue[overdue]?.deadline ?? Infinity) <= now) {
      overdue += 1;
    }
    if (overdue === 0) return;
    const expired = this.queue.splice(0, overdue);
    this.queuedGauge.dec(overdue);
    const neverSent = timeout(false);
    for (const entry of expired) this.settle(entry, neverSent);
    this.notifyIdle();
  }

  private clearTimers(): void {
    if (this.lingerTimer !== null) clearTimeout(this.lingerTimer);
    if (this.deadlineTimer !== null) clearTimeout(this.deadlineTimer);
    this.lingerTimer = null;
    this.deadlineTimer = null;
  }
}

/** Groups a batch per topic, keeping call order inside each topic (kafkajs needs one entry per topic). */
export function groupByTopic(batch: readonly { topic: string; message: Message }[]): TopicMessages[] {
  const byTopic = new Map<string, Message[]>();
  for (const { topic, message } of batch) {
    const messages = byTopic.get(topic);
    if (messages === undefined) byTopic.set(topic, [message]);
    else messages.push(message);
  }
  return [...byTopic].map(([topic, messages]) => ({ topic, messages }));
}
