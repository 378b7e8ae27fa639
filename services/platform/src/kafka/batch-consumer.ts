import type {
  Batch,
  Consumer,
  ConsumerGroupJoinEvent,
  EachBatchPayload,
  Kafka,
  KafkaMessage,
  Producer,
} from 'kafkajs';
import type { Logger } from 'pino';
import type { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { backoffDelay, chunk, resolveRetryPolicy } from './batching.js';
import type { RetryPolicy } from './batching.js';
import { KafkaError, TransientHandlerError, errorMessage } from './errors.js';
import { processWithIsolation } from './isolation.js';
import type { AttemptResult, Outcome } from './isolation.js';
import { buildDlqHeaders, decodeMessage, dlqTopicFor } from './messages.js';
import type { DecodedMessage } from './messages.js';
import { BATCH_SIZE_BUCKETS, DURATION_BUCKETS, counter, gauge, histogram } from './metrics.js';
import { consumerLag, nextOffset } from './offsets.js';
import { sleep, withTimeout } from './timeout.js';

/** What a handler receives: consecutive messages of ONE partition, in offset order. */
export interface PartitionBatch {
  topic: string;
  partition: number;
  messages: DecodedMessage[];
  /** Offset of `messages[0]`. */
  firstOffset: string;
  /** Offset after the last message — the position to store (e.g. in MySQL) once applied. */
  nextOffset: string;
}

/**
 * Applies one batch. Resolve = every message is applied (the offsets are then committed); throw =
 * none is (the batch is retried as a whole, so a handler must be all-or-nothing, e.g. one DB
 * transaction). Throw {@link TransientHandlerError} (or match `isTransient`) when the failure is not
 * the messages' fault, so they are re-delivered later instead of dead-lettered.
 */
export type BatchHandler = (batch: PartitionBatch) => Promise<void>;

/** One partition of an assignment. */
export interface TopicPartitionRef {
  topic: string;
  partition: number;
}

/** Handed to `onPartitionsAssigned`: lets it position partitions before anything is delivered. */
export interface AssignmentControl {
  /** Next offset to deliver for the partition (e.g. `next_offset` stored in MySQL). */
  seekTo(topic: string, partition: number, offset: string): void;
}

/** Options of {@link BatchConsumer}. */
export interface BatchConsumerOptions {
  kafka: Kafka;
  groupId: string;
  /** One handler per subscribed topic; the keys are the subscription. */
  handlers: Record<string, BatchHandler>;
  logger: Logger;
  registry: Registry;
  /** Largest batch given to a handler; bigger fetched batches are split. Default 500. */
  maxBatchMessages?: number;
  /** Longest a fetch waits for data (kafkajs `maxWaitTimeInMs`). Default 250. */
  maxBatchWaitMs?: number;
  /**
   * The broker answers a fetch once this many bytes are ready, or after `maxBatchWaitMs` (kafkajs
   * `minBytes`). Above 1, batches grow under load (fewer fetches, fewer transactions downstream)
   * at the price of up to `maxBatchWaitMs` more lag when traffic is light. Default 1.
   */
  minBatchBytes?: number;
  /** Retries of a failed handler call before poison isolation. Default 5 attempts, 100 ms … 5 s. */
  retry?: Partial<RetryPolicy>;
  /** Classifies errors that must never dead-letter. Default: `err instanceof TransientHandlerError`. */
  isTransient?: (err: unknown) => boolean;
  /** How long a partition stays paused after a transient failure / failed DLQ write. Default retry.maxDelayMs. */
  pauseOnTransientMs?: number;
  /** Where a group without committed offsets starts. Default true (earliest: a log is replayed whole). */
  fromBeginning?: boolean;
  /** DLQ topic = topic + suffix; the DLQ topic must exist. Default `.dlq`. */
  dlqSuffix?: string;
  /** Bound on writing one dead letter. Default 5000. */
  dlqTimeoutMs?: number;
  sessionTimeoutMs?: number;
  heartbeatIntervalMs?: number;
  /** Partitions handled in parallel (each partition stays sequential). Default 1. */
  partitionsConsumedConcurrently?: number;
  /** Bound on connect + join in `start()`. Default 30 000. */
  startTimeoutMs?: number;
  /** Bound on `stop()` (waits for the running handler call, then leaves the group). Default 10 000. */
  stopTimeoutMs?: number;
  /**
   * Called after every join/rebalance with this member's partitions. Delivery to any partition
   * waits until it returned, so it can read stored offsets (MySQL) and `seekTo` them; if it throws,
   * it is retried (retry policy) and then the consumer refuses to deliver rather than deliver from
   * offsets it could not verify.
   */
  onPartitionsAssigned?: (
    assignments: TopicPartitionRef[],
    control: AssignmentControl,
  ) => Promise<void> | void;
  /** Jitter source (tests). */
  random?: () => number;
}

interface Entry {
  raw: KafkaMessage;
  decoded: DecodedMessage;
}

interface ChunkContext {
  topic: string;
  partition: number;
  handler: BatchHandler;
  payload: EachBatchPayload;
  highWatermark: string;
}

/**
 * A consumer-group helper for batch processing with at-least-once delivery, commits only after
 * success, bounded retries and a dead-letter topic.
 *
 * Per fetched kafkajs batch (one partition) it hands the handler chunks of ≤ `maxBatchMessages`
 * in offset order; after a chunk succeeded it resolves and commits `last offset + 1`. It stops
 * between chunks when kafkajs says the consumer stopped (`isRunning`) or the partition was sought
 * (`isStale`), leaving the rest uncommitted for whoever consumes next.
 *
 * Failures: the chunk is retried with exponential backoff up to `retry.maxAttempts`. Then poison
 * is isolated by bisection: each half is tried once, recursively, and single messages get the full
 * retry budget; a single message that still fails is written to `<topic>.dlq` (original key/value/
 * headers + origin, error, attempts) and skipped. Every other message is applied exactly once by a
 * successful handler call, in order. Transient errors (see `isTransient`) and failed DLQ writes never
 * skip anything: the partition is paused for `pauseOnTransientMs` and re-fetched from the last
 * committed position, while other partitions continue.
 *
 * Back-pressure: kafkajs fetches from a broker, hands the batches to the workers and waits until
 * they are ALL processed before fetching again (fetcher.js), so a slow handler simply stops fetching;
 * memory stays bounded by one fetch response (kafkajs maxBytes / maxBytesPerPartition). Heartbeats
 * are sent between chunks and retries, so a slow but progressing handler keeps its partitions; a
 * partition that cannot progress is paused (kafkajs `pause`) instead of being re-fetched in a loop.
 */
export class BatchConsumer {
  private readonly consumer: Consumer;
  private readonly kafka: Kafka;
  private readonly groupId: string;
  private readonly handlers: Map<string, BatchHandler>;
  private readonly logger: Logger;
  private readonly maxBatchMessages: number;
  private readonly policy: RetryPolicy;
  private readonly isTransient: (err: unknown) => boolean;
  private readonly pauseOnTransientMs: number;
  private readonly fromBeginning: boolean;
  private readonly dlqSuffix: string;
  private readonly dlqTimeoutMs: number;
  private readonly concurrency: number;
  private readonly startTimeoutMs: number;
  private readonly stopTimeoutMs: number;
  private readonly onPartitionsAssigned: BatchConsumerOptions['onPartitionsAssigned'];
  private readonly random: () => number;

  private readonly batchSize: Histogram<'topic'>;
  private readonly handlerDuration: Histogram<'topic'>;
  private readonly lag: Gauge<'topic' | 'partition'>;
  private readonly deadLetters: Counter<'topic'>;
  private readonly retries: Counter<'topic'>;

  private dlqProducer: Producer | null = null;
  private readonly abort = new AbortController();
  private readonly pauseTimers = new Set<NodeJS.Timeout>();
  private readonly lagLabels = new Set<string>();
  private assignments: TopicPartitionRef[] = [];
  private assignmentGate: Promise<boolean> = Promise.resolve(true);
  private state: 'new' | 'starting' | 'running' | 'stopping' | 'stopped' = 'new';
  private stopping: Promise<void> | null = null;

  constructor(options: BatchConsumerOptions) {
    const topics = Object.keys(options.handlers);
    if (topics.length === 0) throw new RangeError('BatchConsumer: handlers must name ≥ 1 topic');
    this.kafka = options.kafka;
    this.groupId = options.groupId;
    this.handlers = new Map(Object.entries(options.handlers));
    this.logger = options.logger.child({ component: 'kafka-consumer', groupId: options.groupId });
    this.maxBatchMessages = options.maxBatchMessages ?? 500;
    if (!Number.isInteger(this.maxBatchMessages) || this.maxBatchMessages < 1) {
      throw new RangeError('BatchConsumer: maxBatchMessages must be an integer ≥ 1');
    }
    this.policy = resolveRetryPolicy(options.retry);
    this.isTransient = options.isTransient ?? ((err) => err instanceof TransientHandlerError);
    this.pauseOnTransientMs = options.pauseOnTransientMs ?? this.policy.maxDelayMs;
    this.fromBeginning = options.fromBeginning ?? true;
    this.dlqSuffix = options.dlqSuffix ?? '.dlq';
    this.dlqTimeoutMs = options.dlqTimeoutMs ?? 5000;
    this.concurrency = options.partitionsConsumedConcurrently ?? 1;
    this.startTimeoutMs = options.startTimeoutMs ?? 30_000;
    this.stopTimeoutMs = options.stopTimeoutMs ?? 10_000;
    this.onPartitionsAssigned = options.onPartitionsAssigned;
    this.random = options.random ?? Math.random;

    this.consumer = options.kafka.consumer({
      groupId: options.groupId,
      sessionTimeout: options.sessionTimeoutMs ?? 30_000,
      heartbeatInterval: options.heartbeatIntervalMs ?? 3000,
      maxWaitTimeInMs: options.maxBatchWaitMs ?? 250,
      minBytes: options.minBatchBytes ?? 1,
      allowAutoTopicCreation: false,
    });

    const registry = options.registry;
    this.batchSize = histogram(
      registry,
      'hyperscale_kafka_consumer_batch_size',
      'Messages per handler call.',
      BATCH_SIZE_BUCKETS,
      ['topic'],
    );
    this.handlerDuration = histogram(
      registry,
      'hyperscale_kafka_consumer_handler_duration_seconds',
      'Duration of one handler call (successful or not).',
      DURATION_BUCKETS,
      ['topic'],
    );
    this.lag = gauge(
      registry,
      'hyperscale_kafka_consumer_lag',
      'High watermark minus the committed position, per partition this process consumes.',
      ['topic', 'partition'],
    );
    this.deadLetters = counter(
      registry,
      'hyperscale_kafka_dead_letters_total',
      'Messages written to the dead-letter topic after exhausting retries.',
      ['topic'],
    );
    this.retries = counter(
      registry,
      'hyperscale_kafka_consumer_retries_total',
      'Handler calls repeated after a failure.',
      ['topic'],
    );
  }

  /**
   * Connects, subscribes to the handlers' topics, joins the group and starts delivering. Rejects
   * (after cleaning up) if that does not complete within `startTimeoutMs`. Single use: a stopped
   * consumer cannot be started again — build a new one.
   */
  async start(): Promise<void> {
    if (this.state !== 'new') throw new KafkaError('KAFKA_CONSUMER_STATE', `consumer already ${this.state}`);
    this.state = 'starting';
    this.consumer.on(this.consumer.events.GROUP_JOIN, (event) => this.onGroupJoin(event));
    this.consumer.on(this.consumer.events.CRASH, (event) => {
      this.logger.error(
        { err: event.payload.error, restart: event.payload.restart },
        'kafka consumer crashed',
      );
    });
    const starting = (async () => {
      const dlq = this.kafka.producer({
        idempotent: false,
        allowAutoTopicCreation: false,
        retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 1000 },
      });
      this.dlqProducer = dlq;
      await dlq.connect();
      await this.consumer.connect();
      await this.consumer.subscribe({ topics: [...this.handlers.keys()], fromBeginning: this.fromBeginning });
      await this.consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: this.concurrency,
        eachBatch: (payload) => this.onBatch(payload),
      });
    })();
    try {
      await withTimeout(
        starting,
        this.startTimeoutMs,
        () =>
          new KafkaError('KAFKA_CONSUMER_START', `consumer did not start within ${this.startTimeoutMs} ms`),
      );
      if (this.state === 'starting') this.state = 'running';
    } catch (err) {
      await this.stop();
      throw err instanceof KafkaError
        ? err
        : new KafkaError('KAFKA_CONSUMER_START', `consumer start failed: ${errorMessage(err)}`, {
            cause: err,
          });
    }
  }

  /**
   * Positions a partition: the next message delivered is `offset`. Takes effect at the next fetch;
   * a batch already being delivered for that partition is abandoned (uncommitted) at the next chunk
   * boundary. Only valid once `start()` joined the group (kafkajs: seek needs a running consumer);
   * use `onPartitionsAssigned` to seek at start and on every rebalance.
   */
  seekTo(topic: string, partition: number, offset: string): void {
    try {
      this.consumer.seek({ topic, partition, offset });
    } catch (err) {
      throw new KafkaError(
        'KAFKA_SEEK',
        `cannot seek ${topic}[${partition}] to ${offset}: ${errorMessage(err)}`,
        {
          cause: err,
        },
      );
    }
  }

  /** Partitions currently assigned to this member (as of the last join). */
  assignedPartitions(): TopicPartitionRef[] {
    return [...this.assignments];
  }

  /**
   * Stops delivering: backoff waits are cut short, the handler call in progress (if any) is awaited,
   * the group is left and connections closed — all within `stopTimeoutMs` (past it, it logs and
   * returns; uncommitted messages are re-delivered to the next owner). Idempotent; never rejects.
   */
  stop(): Promise<void> {
    if (this.stopping !== null) return this.stopping;
    this.state = 'stopping';
    this.abort.abort();
    for (const timer of this.pauseTimers) clearTimeout(timer);
    this.pauseTimers.clear();
    this.stopping = (async () => {
      const started = Date.now();
      try {
        await withTimeout(
          this.consumer.disconnect(),
          this.stopTimeoutMs,
          () => new Error(`consumer did not stop within ${this.stopTimeoutMs} ms`),
        );
      } catch (err) {
        this.logger.warn({ err }, 'kafka consumer stop was not clean');
      }
      const dlq = this.dlqProducer;
      if (dlq !== null) {
        const budget = Math.max(1000, this.stopTimeoutMs - (Date.now() - started));
        await withTimeout(
          dlq.disconnect(),
          budget,
          () => new Error('DLQ producer disconnect timed out'),
        ).catch((err: unknown) => this.logger.warn({ err }, 'kafka DLQ producer disconnect failed'));
      }
      for (const key of this.lagLabels) this.lag.remove(lagLabelsOf(key));
      this.lagLabels.clear();
      this.state = 'stopped';
    })();
    return this.stopping;
  }

  private onGroupJoin(event: ConsumerGroupJoinEvent): void {
    const assignment = event.payload.memberAssignment;
    this.assignments = Object.entries(assignment).flatMap(([topic, partitions]) =>
      partitions.map((partition) => ({ topic, partition })),
    );
    const current = new Set(this.assignments.map((a) => lagKey(a.topic, a.partition)));
    for (const key of [...this.lagLabels]) {
      if (!current.has(key)) {
        this.lag.remove(lagLabelsOf(key));
        this.lagLabels.delete(key);
      }
    }
    this.logger.info({ assignments: assignment }, 'kafka consumer joined the group');
    this.assignmentGate = this.runAssignmentHook(this.assignments);
  }

  /** Runs `onPartitionsAssigned` with retries; resolves false if it kept failing (never rejects). */
  private async runAssignmentHook(assignments: TopicPartitionRef[]): Promise<boolean> {
    const hook = this.onPartitionsAssigned;
    if (hook === undefined) return true;
    const control: AssignmentControl = {
      seekTo: (topic, partition, offset) => this.seekTo(topic, partition, offset),
    };
    for (let attempt = 1; attempt <= this.policy.maxAttempts; attempt += 1) {
      try {
        await hook(assignments, control);
        return true;
      } catch (err) {
        this.logger.error({ err, attempt }, 'onPartitionsAssigned failed');
        if (attempt < this.policy.maxAttempts) {
          await sleep(backoffDelay(attempt, this.policy, this.random), this.abort.signal);
          if (this.abort.signal.aborted) return false;
        }
      }
    }
    return false;
  }

  private async onBatch(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload;
    const handler = this.handlers.get(batch.topic);
    if (handler === undefined) {
      throw new KafkaError('KAFKA_NO_HANDLER', `no handler for topic ${batch.topic}`);
    }
    if (!(await this.assignmentGate)) {
      // The hook failed for the whole retry budget: try once more per batch, else refuse.
      this.assignmentGate = this.runAssignmentHook(this.assignments);
      if (!(await this.assignmentGate)) {
        throw new KafkaError(
          'KAFKA_ASSIGNMENT_HOOK',
          'onPartitionsAssigned keeps failing; not delivering from unverified offsets',
        );
      }
    }
    const ctx: ChunkContext = {
      topic: batch.topic,
      partition: batch.partition,
      handler,
      payload,
      highWatermark: batch.highWatermark,
    };
    const firstOffset = batch.firstOffset();
    if (firstOffset !== null) this.setLag(batch.topic, batch.partition, batch.highWatermark, firstOffset);
    const entries = batch.messages.map((raw) => ({
      raw,
      decoded: decodeMessage(batch.topic, batch.partition, raw),
    }));
    for (const part of chunk(entries, this.maxBatchMessages)) {
      if (!this.isLive(payload)) return;
      const outcome = await this.processChunk(ctx, part);
      if (outcome === 'paused') {
        this.pausePartition(payload, batch);
        return;
      }
      if (outcome === 'interrupted') return;
      await payload.heartbeat();
    }
  }

  /** Runs one chunk through {@link processWithIsolation} with kafkajs-backed steps. */
  private processChunk(ctx: ChunkContext, items: Entry[]): Promise<Outcome> {
    return processWithIsolation(items, this.policy.maxAttempts, {
      attempt: (group, attempts) => this.attempt(ctx, group, attempts),
      succeeded: (group) => this.advance(ctx, group),
      deadLetter: (item, error, attempts) => this.deadLetter(ctx, item, error, attempts),
      isTransient: (error) => {
        if (!this.isTransient(error)) return false;
        this.logger.warn(
          { err: error, topic: ctx.topic, partition: ctx.partition },
          'transient handler failure; pausing the partition',
        );
        return true;
      },
      isLive: () => this.isLive(ctx.payload),
      onSplit: (group, error) =>
        this.logger.warn(
          {
            err: error,
            topic: ctx.topic,
            partition: ctx.partition,
            size: group.length,
            firstOffset: group[0]?.raw.offset,
          },
          'handler keeps failing on a batch; isolating poison messages',
        ),
    });
  }

  private async attempt(ctx: ChunkContext, items: Entry[], attempts: number): Promise<AttemptResult> {
    let lastError: unknown;
    for (let attempt = 1; attempt <= attempts; attempt += 1) {
      if (attempt > 1) {
        this.retries.inc({ topic: ctx.topic });
        await sleep(backoffDelay(attempt - 1, this.policy, this.random), this.abort.signal);
        if (!this.isLive(ctx.payload)) return { ok: false, interrupted: true, attempts: attempt - 1 };
        await ctx.payload.heartbeat();
      }
      const first = items[0];
      const last = items[items.length - 1];
      if (first === undefined || last === undefined) return { ok: true, attempts: 0 };
      const stopTimer = this.handlerDuration.startTimer({ topic: ctx.topic });
      this.batchSize.observe({ topic: ctx.topic }, items.length);
      try {
        await ctx.handler({
          topic: ctx.topic,
          partition: ctx.partition,
          messages: items.map((item) => item.decoded),
          firstOffset: first.raw.offset,
          nextOffset: nextOffset(last.raw.offset),
        });
        return { ok: true, attempts: attempt };
      } catch (err) {
        lastError = err;
        this.logger.debug(
          { err, topic: ctx.topic, partition: ctx.partition, attempt, size: items.length },
          'handler failed',
        );
      } finally {
        stopTimer();
      }
    }
    return { ok: false, interrupted: false, attempts, error: lastError };
  }

  /** Resolves and commits the position after `items`, and updates the lag gauge. */
  private async advance(ctx: ChunkContext, items: Entry[]): Promise<void> {
    const last = items[items.length - 1];
    if (last === undefined) return;
    const next = nextOffset(last.raw.offset);
    ctx.payload.resolveOffset(last.raw.offset);
    await ctx.payload.commitOffsetsIfNecessary({
      topics: [{ topic: ctx.topic, partitions: [{ partition: ctx.partition, offset: next }] }],
    });
    this.setLag(ctx.topic, ctx.partition, ctx.highWatermark, next);
  }

  /** Lag = high watermark − position: set when a batch arrives (so a stuck handler shows) and after each commit. */
  private setLag(topic: string, partition: number, highWatermark: string, position: string): void {
    this.lagLabels.add(lagKey(topic, partition));
    this.lag.set({ topic, partition: String(partition) }, consumerLag(highWatermark, position));
  }

  /** Writes one message to the DLQ; false (logged) if that failed, so the caller must not skip it. */
  private async deadLetter(
    ctx: ChunkContext,
    entry: Entry,
    error: unknown,
    attempts: number,
  ): Promise<boolean> {
    const dlqTopic = dlqTopicFor(ctx.topic, this.dlqSuffix);
    const producer = this.dlqProducer;
    const fields = { topic: ctx.topic, partition: ctx.partition, offset: entry.raw.offset, dlqTopic };
    if (producer === null) return false;
    try {
      await withTimeout(
        producer.send({
          topic: dlqTopic,
          acks: -1,
          timeout: this.dlqTimeoutMs,
          messages: [
            {
              key: entry.raw.key,
              value: entry.raw.value,
              headers: buildDlqHeaders({
                original: entry.raw.headers,
                topic: ctx.topic,
                partition: ctx.partition,
                offset: entry.raw.offset,
                error: errorMessage(error),
                attempts,
                groupId: this.groupId,
                failedAt: new Date(),
              }),
            },
          ],
        }),
        this.dlqTimeoutMs,
        () => new Error(`DLQ write did not finish within ${this.dlqTimeoutMs} ms`),
      );
    } catch (err) {
      this.logger.error({ ...fields, err }, 'could not write a dead letter; pausing the partition');
      return false;
    }
    this.deadLetters.inc({ topic: ctx.topic });
    this.logger.error(
      { ...fields, err: error, attempts },
      'message dead-lettered after exhausting its retries',
    );
    return true;
  }

  private pausePartition(payload: EachBatchPayload, batch: Batch): void {
    if (this.abort.signal.aborted) return;
    const resume = payload.pause();
    const timer = setTimeout(() => {
      this.pauseTimers.delete(timer);
      if (this.abort.signal.aborted) return;
      try {
        resume();
      } catch (err) {
        this.logger.warn({ err, topic: batch.topic, partition: batch.partition }, 'resume failed');
      }
    }, this.pauseOnTransientMs);
    this.pauseTimers.add(timer);
  }

  private isLive(payload: EachBatchPayload): boolean {
    return !this.abort.signal.aborted && payload.isRunning() && !payload.isStale();
  }
}

function lagKey(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}

function lagLabelsOf(key: string): { topic: string; partition: string } {
  const at = key.lastIndexOf('\u0000');
  return { topic: key.slice(0, at), partition: key.slice(at + 1) };
}
