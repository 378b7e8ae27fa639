/**
 * The write-behind pipeline (DESIGN.md §2 "Writer"): one consumer group over every handled topic,
 * each partition batch applied to the MySQL primary in ONE transaction together with the
 * partition's next offset, so every event is applied exactly once whatever crashes when.
 * See README.md for the step-by-step argument.
 */
import {
  BatchConsumer,
  TransientHandlerError,
  type AssignmentControl,
  type BatchConsumerOptions,
  type BatchHandler,
  type Logger,
  type MysqlConnection,
  type MysqlExecutor,
  type MysqlPool,
  type PartitionBatch,
  type Registry,
  type RetryPolicy,
  type TopicPartitionRef,
} from '@hyperscale/platform';
import { classifyFailure } from './errors.js';
import { writerMetrics, type WriterMetrics } from './metrics.js';
import { splitByStoredOffset, type OffsetEvent } from './offsets.js';

export type { OffsetEvent } from './offsets.js';

/** What a handler reports about one applied batch (for metrics and logs). */
export interface ApplyStats {
  /** Events absorbed by a later event with the same key in the batch (e.g. like → unlike). */
  readonly collapsed: number;
  /** Events whose intended state MySQL already had (a repeated like, an unlike of nothing). */
  readonly unchanged: number;
  /**
   * Events left out because a fallback of the producing service already applied them
   * (`fallback_events`) or wrote a newer state over them (`like_fallback_marks`).
   */
  readonly superseded?: number;
  /** Rows inserted, updated or deleted, all tables together. */
  readonly rowsChanged: number;
}

/**
 * How one topic's events are decoded and applied. New topics (counters, uniques) join the pipeline
 * by adding a handler; the pipeline itself does not change.
 */
export interface TopicHandler<E> {
  readonly topic: string;
  /**
   * Parses one message value (UTF-8 text, null for a tombstone). Throw `InvalidEventError` when it
   * can never be applied: the consumer isolates that one message and dead-letters it, and every
   * other message of the batch is still applied. Must be pure (it runs again on every retry).
   */
  decode(value: string | null): E;
  /**
   * Applies events (offset order, none applied before) on `conn`, which is inside the batch's
   * transaction: do not COMMIT/ROLLBACK, do not keep the connection. Must be deterministic given the
   * database state, since the transaction is re-run after a deadlock or conflict. Throw
   * `ApplyConflictError` for a lost race (re-run), `InvalidEventError` for an event that can never
   * be stored (dead-lettered); any other error pauses the partition and retries later.
   */
  apply(conn: MysqlExecutor, events: readonly OffsetEvent<E>[]): Promise<ApplyStats>;
  /**
   * True when `apply` may take the events of several partitions of the topic in one call (each
   * partition's events in offset order, one partition after another): its result must depend only
   * on the order of events within a key, which never spans partitions. A transaction carrying
   * batches of several partitions then makes one `apply` call for them instead of one per batch.
   */
  readonly mergePartitions?: boolean;
}

/** Options of {@link runPipeline}. */
export interface PipelineOptions {
  kafka: BatchConsumerOptions['kafka'];
  /** The MySQL PRIMARY pool: every transaction and the stored offsets live there. */
  pool: MysqlPool;
  /** Kafka consumer group, also the `group_id` of the offsets stored in MySQL. */
  groupId: string;
  /** One per topic; topics must be distinct. */
  handlers: readonly TopicHandler<unknown>[];
  logger: Logger;
  registry: Registry;
  batch?: {
    /** Largest batch applied in one transaction. Default 1000. */
    maxMessages?: number;
    /** Longest a fetch waits for more data. Default 100 ms. */
    maxWaitMs?: number;
    /** A fetch returns early once this many bytes are ready (kafkajs `minBytes`). Default 1. */
    minBytes?: number;
    /** Partitions applied in parallel (each partition stays sequential). Default 8. */
    partitionsConcurrently?: number;
    /**
     * Partition batches one transaction may carry. Batches handed over in the same event-loop turn
     * (the partitions of one fetch) share a transaction up to this many; 1 = one transaction per
     * batch. Default 16.
     */
    maxBatchesPerTransaction?: number;
    /**
     * Events a transaction of several batches may carry (a single batch may hold more). Past a
     * thousand events the cost of a transaction is spread thin already, and separate transactions
     * let the writer and MariaDB work in parallel while a backlog drains. Default 1000.
     */
    maxEventsPerTransaction?: number;
  };
  /** Consumer retry policy before poison isolation (see BatchConsumer). Default 3 attempts, 100 ms … 2 s. */
  retry?: Partial<RetryPolicy>;
  /** How long a partition stays paused after a transient failure. Default 1000 ms. */
  transientPauseMs?: number;
  /** Attempts of one transaction on deadlock / lock wait timeout / conflict. Default 3. */
  transactionAttempts?: number;
  sessionTimeoutMs?: number;
  heartbeatIntervalMs?: number;
  startTimeoutMs?: number;
  /** Bound on `stop()`: the batch in progress is finished, then the group left. Default 10 000 ms. */
  stopTimeoutMs?: number;
  /**
   * Seek every assigned partition to the `next_offset` stored in MySQL at start and on every
   * rebalance (default true). Turning it off only makes sense in tests of the in-transaction
   * de-duplication: correctness does not depend on it, efficiency does.
   */
  seekToStoredOffsets?: boolean;
}

/** A running pipeline. */
export interface PipelineHandle {
  /**
   * Stops consuming: the batch being applied finishes (its transaction commits or rolls back),
   * the group is left, connections to Kafka closed — bounded by `stopTimeoutMs`. Does not close
   * the MySQL pool (the caller owns it). Idempotent; never rejects.
   */
  stop(): Promise<void>;
  /** True between a successful start (group joined) and `stop()`. */
  isRunning(): boolean;
  /** Partitions this member owns as of the last rebalance. */
  assignedPartitions(): TopicPartitionRef[];
}

const TOPIC = 'VARCHAR(249) CHARACTER SET ascii COLLATE ascii_bin';
const SELECT_OFFSET_FOR_UPDATE =
  'SELECT next_offset FROM consumer_offsets WHERE group_id = ? AND topic = ? AND `partition` = ? FOR UPDATE';
const INSERT_OFFSET =
  'INSERT INTO consumer_offsets (group_id, topic, `partition`, next_offset) VALUES (?, ?, ?, ?)';
const UPDATE_OFFSET =
  'UPDATE consumer_offsets SET next_offset = ? WHERE group_id = ? AND topic = ? AND `partition` = ?';
/** The offset rows of several partitions, locked in the order of the JSON array `[[topic, partition], …]`. */
const SELECT_OFFSETS_FOR_UPDATE = `SELECT c.topic, c.\`partition\` AS p, c.next_offset FROM JSON_TABLE(?, '$[*]' COLUMNS (t ${TOPIC} PATH '$[0]', p INT PATH '$[1]')) AS j STRAIGHT_JOIN consumer_offsets AS c ON c.group_id = ? AND c.topic = j.t AND c.\`partition\` = j.p FOR UPDATE`;
const UPDATE_OFFSETS = `UPDATE consumer_offsets AS c JOIN JSON_TABLE(?, '$[*]' COLUMNS (t ${TOPIC} PATH '$[0]', p INT PATH '$[1]', n BIGINT PATH '$[2]')) AS j ON c.topic = j.t AND c.\`partition\` = j.p SET c.next_offset = j.n WHERE c.group_id = ?`;
/** A plain INSERT on purpose: two first batches of a partition racing make the second fail (duplicate key). */
const INSERT_OFFSETS = `INSERT INTO consumer_offsets (group_id, topic, \`partition\`, next_offset) SELECT ?, j.t, j.p, j.n FROM JSON_TABLE(?, '$[*]' COLUMNS (t ${TOPIC} PATH '$[0]', p INT PATH '$[1]', n BIGINT PATH '$[2]')) AS j`;
const SELECT_STORED_OFFSETS =
  'SELECT `partition` AS p, next_offset FROM consumer_offsets WHERE group_id = ? AND topic = ?';

interface BatchOutcome {
  fresh: number;
  duplicates: number;
  stats: ApplyStats | null;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A partition batch handed to the applier, waiting for its transaction. */
interface Pending {
  handler: TopicHandler<unknown>;
  batch: PartitionBatch;
  events: OffsetEvent<unknown>[];
  resolve: (outcome: BatchOutcome) => void;
  reject: (err: unknown) => void;
}

const NO_STATS: ApplyStats = { collapsed: 0, unchanged: 0, rowsChanged: 0 };

function partitionKey(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}

/** Topic, then partition: the order in which a shared transaction locks offset rows. */
function byPartition(a: Pending, b: Pending): number {
  if (a.batch.topic !== b.batch.topic) return a.batch.topic < b.batch.topic ? -1 : 1;
  return a.batch.partition - b.batch.partition;
}

/**
 * Runs the transaction protocol (see {@link runPipeline}) for the batches of every handled topic.
 *
 * Why batches share transactions: a transaction costs the writer and MariaDB about the same
 * whatever its size (round trips, START/COMMIT, the offset rows), and kafkajs hands the partitions
 * of one fetch over at the same time. Batches handed over in one event-loop turn therefore go into
 * ONE transaction (at most `maxBatchesPerTransaction` batches and `maxEventsPerTransaction`
 * events): every offset row locked by one statement in (topic, partition) order, moved by one
 * statement, one `apply` per topic for handlers that `mergePartitions`, one COMMIT. The protocol
 * per partition is unchanged, and so is exactly-once. When a shared transaction fails for any
 * reason (deadlock, a poison event, a race on a first offset, an unanswered COMMIT), each of its
 * batches is re-run in a transaction of its own, with the retries, pauses and poison isolation a
 * batch always had.
 */
class PartitionApplier {
  private queue: Pending[] = [];
  private scheduled = false;

  constructor(
    private readonly pool: MysqlPool,
    private readonly groupId: string,
    private readonly metrics: WriterMetrics,
    private readonly logger: Logger,
    private readonly transactionAttempts: number,
    /** Partition batches and events one shared transaction may carry. */
    private readonly limits: { batches: number; events: number },
  ) {}

  handlerFor(handler: TopicHandler<unknown>): BatchHandler {
    return async (batch) => {
      // Decoding first, outside any transaction: a poison message fails the call before MySQL is
      // touched, and the consumer's bisection dead-letters exactly that message.
      const events = batch.messages.map((m) => ({
        partition: batch.partition,
        offset: m.offset,
        event: handler.decode(m.value),
      }));
      const stopTimer = this.metrics.applyDuration.startTimer({ topic: batch.topic });
      this.metrics.batchSize.observe({ topic: batch.topic }, events.length);
      const outcome =
        this.limits.batches === 1
          ? await this.applyWithRetries(handler, batch, events)
          : await this.enqueue(handler, batch, events);
      stopTimer();
      this.record(batch, outcome);
    };
  }

  private enqueue(
    handler: TopicHandler<unknown>,
    batch: PartitionBatch,
    events: OffsetEvent<unknown>[],
  ): Promise<BatchOutcome> {
    return new Promise((resolve, reject) => {
      this.queue.push({ handler, batch, events, resolve, reject });
      if (this.scheduled) return;
      this.scheduled = true;
      // The partitions of one fetch arrive within a few microtasks of each other.
      setImmediate(() => {
        this.scheduled = false;
        this.flush();
      });
    });
  }

  /** Everything queued goes now, in transactions within the limits, all started at once. */
  private flush(): void {
    while (this.queue.length > 0) {
      const group: Pending[] = [];
      const partitions = new Set<string>();
      const later: Pending[] = [];
      let events = 0;
      for (const pending of this.queue) {
        const key = partitionKey(pending.batch.topic, pending.batch.partition);
        const fits =
          group.length === 0 ||
          (group.length < this.limits.batches && events + pending.events.length <= this.limits.events);
        // Two batches of one partition never share a transaction: the second must see the first's offset.
        if (fits && !partitions.has(key)) {
          group.push(pending);
          partitions.add(key);
          events += pending.events.length;
        } else later.push(pending);
      }
      this.queue = later;
      // runGroup settles every batch itself; this only guards against a bug escaping it.
      this.runGroup(group).catch((err: unknown) => {
        for (const pending of group) pending.reject(err);
      });
    }
  }

  private async runGroup(group: Pending[]): Promise<void> {
    if (group.length > 1) {
      const outcomes = await this.shared(group);
      if (outcomes !== undefined) {
        group.forEach((pending, i) => pending.resolve(outcomes[i] as BatchOutcome));
        return;
      }
    }
    await Promise.all(
      group.map(({ handler, batch, events, resolve, reject }) =>
        this.applyWithRetries(handler, batch, events).then(resolve, reject),
      ),
    );
  }

  /** One attempt at a shared transaction; undefined (rolled back, logged) when it failed. */
  private async shared(group: Pending[]): Promise<BatchOutcome[] | undefined> {
    let conn: MysqlConnection;
    try {
      conn = await this.pool.acquire();
    } catch (err) {
      this.logger.debug({ err }, 'no connection for a shared transaction; applying batch by batch');
      return undefined;
    }
    try {
      const outcomes = await this.sharedTransaction(conn, group);
      const applied = outcomes.filter((outcome) => outcome.stats !== null).length;
      if (applied > 0) {
        this.metrics.commits.inc();
        this.metrics.batchesPerCommit.observe(applied);
      }
      return outcomes;
    } catch (err) {
      await rollbackQuietly(conn);
      for (const { batch } of group) this.metrics.transactions.inc({ topic: batch.topic, outcome: 'retry' });
      this.logger.warn(
        { err, batches: group.map(({ batch }) => `${batch.topic}[${batch.partition}]@${batch.firstOffset}`) },
        'shared transaction failed; applying its batches one by one',
      );
      return undefined;
    } finally {
      conn.release();
    }
  }

  /**
   * The per-partition protocol for several partitions in one transaction: lock their offset rows
   * (one statement, (topic, partition) order), drop what each says was applied, move the offsets
   * (one UPDATE for the rows that exist, one INSERT for first batches), apply, COMMIT.
   */
  private async sharedTransaction(conn: MysqlConnection, group: Pending[]): Promise<BatchOutcome[]> {
    const sorted = [...group].sort(byPartition);
    await conn.unprepared('SET TRANSACTION ISOLATION LEVEL READ COMMITTED');
    await conn.unprepared('START TRANSACTION');
    const rows = await conn.select<{ topic: string; p: number; next_offset: string }>(
      SELECT_OFFSETS_FOR_UPDATE,
      [JSON.stringify(sorted.map(({ batch }) => [batch.topic, batch.partition])), this.groupId],
    );
    const stored = new Map(rows.map((r) => [partitionKey(r.topic, Number(r.p)), String(r.next_offset)]));
    const outcomes = new Map<Pending, BatchOutcome>();
    const updates: [string, number, string][] = [];
    const inserts: [string, number, string][] = [];
    const fresh = new Map<TopicHandler<unknown>, { pending: Pending; events: OffsetEvent<unknown>[] }[]>();
    for (const pending of sorted) {
      const { batch } = pending;
      const offset = stored.get(partitionKey(batch.topic, batch.partition));
      const split = splitByStoredOffset(pending.events, offset ?? null);
      outcomes.set(pending, { fresh: split.fresh.length, duplicates: split.duplicates, stats: null });
      if (split.fresh.length === 0) continue;
      (offset === undefined ? inserts : updates).push([batch.topic, batch.partition, batch.nextOffset]);
      const list = fresh.get(pending.handler) ?? [];
      list.push({ pending, events: split.fresh });
      fresh.set(pending.handler, list);
    }
    if (fresh.size === 0) {
      // Every event was applied before (a re-delivery): nothing to commit.
      await conn.unprepared('ROLLBACK');
      return group.map((pending) => outcomes.get(pending) as BatchOutcome);
    }
    // Offsets before data rows, as in a transaction of one batch.
    if (updates.length > 0) {
      const result = await conn.execute(UPDATE_OFFSETS, [JSON.stringify(updates), this.groupId]);
      if (result.affectedRows !== updates.length)
        throw new Error(`moved ${result.affectedRows} of ${updates.length} locked offset rows`);
    }
    if (inserts.length > 0) await conn.execute(INSERT_OFFSETS, [this.groupId, JSON.stringify(inserts)]);
    for (const [handler, parts] of fresh) {
      const calls = handler.mergePartitions === true ? [parts] : parts.map((part) => [part]);
      for (const call of calls) {
        const stats = await handler.apply(
          conn,
          call.flatMap(({ events }) => events),
        );
        // The stats of a merged call go to its first batch; the others committed with nothing of their own to report.
        call.forEach(({ pending }, i) => {
          const outcome = outcomes.get(pending) as BatchOutcome;
          outcome.stats = i === 0 ? stats : NO_STATS;
        });
      }
    }
    await conn.unprepared('COMMIT');
    return group.map((pending) => outcomes.get(pending) as BatchOutcome);
  }

  private record(batch: PartitionBatch, outcome: BatchOutcome): void {
    const topic = batch.topic;
    if (outcome.duplicates > 0) {
      this.metrics.skipped.inc({ topic, reason: 'duplicate' }, outcome.duplicates);
      this.logger.info(
        { topic, partition: batch.partition, firstOffset: batch.firstOffset, duplicates: outcome.duplicates },
        'skipped events already applied (offset below the stored next_offset)',
      );
    }
    this.metrics.transactions.inc({ topic, outcome: outcome.stats === null ? 'empty' : 'commit' });
    if (outcome.stats === null) return;
    this.metrics.applied.inc({ topic }, outcome.fresh);
    this.metrics.rowsChanged.inc({ topic }, outcome.stats.rowsChanged);
    this.metrics.noop.inc({ topic, reason: 'collapsed' }, outcome.stats.collapsed);
    this.metrics.noop.inc({ topic, reason: 'unchanged' }, outcome.stats.unchanged);
    this.metrics.noop.inc({ topic, reason: 'fallback' }, outcome.stats.superseded ?? 0);
  }

  private async applyWithRetries(
    handler: TopicHandler<unknown>,
    batch: PartitionBatch,
    events: OffsetEvent<unknown>[],
  ): Promise<BatchOutcome> {
    for (let attempt = 1; ; attempt += 1) {
      let conn: MysqlConnection;
      try {
        conn = await this.pool.acquire();
      } catch (err) {
        this.metrics.transactions.inc({ topic: batch.topic, outcome: 'failed' });
        throw new TransientHandlerError(`no MySQL primary connection: ${message(err)}`, { cause: err });
      }
      try {
        return await this.transaction(conn, handler, batch, events);
      } catch (err) {
        await rollbackQuietly(conn);
        const kind = classifyFailure(err);
        if (kind === 'retry' && attempt < this.transactionAttempts) {
          this.metrics.transactions.inc({ topic: batch.topic, outcome: 'retry' });
          this.logger.debug(
            { err, topic: batch.topic, partition: batch.partition, attempt },
            'transaction retried',
          );
          await sleep(Math.min(200, 10 * 2 ** (attempt - 1)) * (0.5 + Math.random()));
          continue;
        }
        this.metrics.transactions.inc({ topic: batch.topic, outcome: 'failed' });
        if (kind === 'poison') throw err;
        throw new TransientHandlerError(
          `applying ${batch.topic}[${batch.partition}] from ${batch.firstOffset} failed: ${message(err)}`,
          { cause: err },
        );
      } finally {
        conn.release();
      }
    }
  }

  /**
   * One attempt: lock the partition's offset row, drop what it says was applied, apply the rest and
   * move the offset, COMMIT. READ COMMITTED: locking reads then lock only rows that exist (no gap
   * locks), so partitions applied in parallel never block each other on neighbouring keys; a row
   * a concurrent writer inserts meanwhile makes our INSERT fail (duplicate key → re-run) instead of
   * being counted twice.
   */
  private async transaction(
    conn: MysqlConnection,
    handler: TopicHandler<unknown>,
    batch: PartitionBatch,
    events: OffsetEvent<unknown>[],
  ): Promise<BatchOutcome> {
    const key = [this.groupId, batch.topic, batch.partition] as const;
    await conn.unprepared('SET TRANSACTION ISOLATION LEVEL READ COMMITTED');
    await conn.unprepared('START TRANSACTION');
    const [row] = await conn.select<{ next_offset: string }>(SELECT_OFFSET_FOR_UPDATE, key);
    const stored = row === undefined ? null : String(row.next_offset);
    const { fresh, duplicates } = splitByStoredOffset(events, stored);
    if (fresh.length === 0) {
      await conn.unprepared('ROLLBACK');
      return { fresh: 0, duplicates, stats: null };
    }
    const next = BigInt(batch.nextOffset);
    // Writing the offset first takes the row lock before any data row: a second writer of the
    // partition (zombie member, retry after an unknown COMMIT) waits here, then sees our offset.
    if (row === undefined) await conn.execute(INSERT_OFFSET, [...key, next]);
    else await conn.execute(UPDATE_OFFSET, [next, ...key]);
    const stats = await handler.apply(conn, fresh);
    try {
      await conn.unprepared('COMMIT');
      this.metrics.commits.inc();
      this.metrics.batchesPerCommit.observe(1);
    } catch (err) {
      // Outcome unknown: retrying is safe, the retry finds the stored offset if it did commit.
      throw new TransientHandlerError(`COMMIT of ${batch.topic}[${batch.partition}] unanswered`, {
        cause: err,
      });
    }
    return { fresh: fresh.length, duplicates, stats };
  }
}

async function rollbackQuietly(conn: MysqlConnection): Promise<void> {
  if (!conn.usable) return; // destroyed: the server rolls the session back
  try {
    await conn.unprepared('ROLLBACK');
  } catch {
    conn.destroy();
  }
}

/** What {@link createBatchHandlers} needs. */
export interface BatchHandlerDeps {
  pool: MysqlPool;
  groupId: string;
  logger: Logger;
  registry: Registry;
  /** Attempts of one transaction on deadlock / lock wait timeout / conflict. Default 3. */
  transactionAttempts?: number;
  /** Partition batches one transaction may carry (see PipelineOptions.batch). Default 16. */
  maxBatchesPerTransaction?: number;
  /** Events a transaction of several batches may carry (see PipelineOptions.batch). Default 1000. */
  maxEventsPerTransaction?: number;
}

/**
 * The consumer-facing side of the topics, by topic: decode each batch, then apply it with the
 * offset protocol (see {@link runPipeline}); batches of any of these topics handed over together
 * share transactions. Exported so the protocol can be exercised without a consumer group — e.g.
 * two "members" applying overlapping batches of one partition at the same time.
 */
export function createBatchHandlers(
  handlers: readonly TopicHandler<unknown>[],
  deps: BatchHandlerDeps,
): Record<string, BatchHandler> {
  const logger = deps.logger.child({ component: 'writer-pipeline', groupId: deps.groupId });
  const limits = {
    batches: deps.maxBatchesPerTransaction ?? 16,
    events: deps.maxEventsPerTransaction ?? 1000,
  };
  if (!Number.isInteger(limits.batches) || limits.batches < 1)
    throw new RangeError('maxBatchesPerTransaction must be an integer ≥ 1');
  if (!Number.isInteger(limits.events) || limits.events < 1)
    throw new RangeError('maxEventsPerTransaction must be an integer ≥ 1');
  const applier = new PartitionApplier(
    deps.pool,
    deps.groupId,
    writerMetrics(deps.registry),
    logger,
    Math.max(1, deps.transactionAttempts ?? 3),
    limits,
  );
  const out: Record<string, BatchHandler> = {};
  for (const handler of handlers) out[handler.topic] = applier.handlerFor(handler);
  return out;
}

/** {@link createBatchHandlers} for one topic. */
export function createBatchHandler(handler: TopicHandler<unknown>, deps: BatchHandlerDeps): BatchHandler {
  return createBatchHandlers([handler], deps)[handler.topic] as BatchHandler;
}

/**
 * Reads the offsets stored in MySQL for the assigned partitions and seeks to them, so a member
 * resumes where MySQL says the data is — not where Kafka's (possibly older) commit says.
 * Partitions without a stored offset keep Kafka's position.
 */
async function seekToStored(
  pool: MysqlPool,
  groupId: string,
  assignments: readonly TopicPartitionRef[],
  control: AssignmentControl,
  logger: Logger,
): Promise<void> {
  const topics = [...new Set(assignments.map((a) => a.topic))];
  for (const topic of topics) {
    const rows = await pool.select<{ p: number; next_offset: string }>(SELECT_STORED_OFFSETS, [
      groupId,
      topic,
    ]);
    const stored = new Map(rows.map((r) => [Number(r.p), String(r.next_offset)]));
    const positions: Record<number, string> = {};
    for (const a of assignments) {
      if (a.topic !== topic) continue;
      const offset = stored.get(a.partition);
      if (offset === undefined) continue;
      control.seekTo(topic, a.partition, offset);
      positions[a.partition] = offset;
    }
    logger.info({ topic, positions }, 'partitions positioned at the offsets stored in MySQL');
  }
}

/**
 * Starts the pipeline and resolves once the consumer joined its group.
 *
 * Per partition batch (consecutive messages of one partition, offset order): decode every message
 * (a poison one fails the call → the consumer retries, bisects and dead-letters only it), then in
 * one transaction on the primary: `SELECT next_offset … FOR UPDATE`, drop events below it, move the
 * offset to the batch's end, apply the rest through the topic's handler, COMMIT; then the consumer
 * commits to Kafka. On start and every rebalance, assigned partitions are sought to the offsets
 * stored in MySQL. Deadlocks and lost races re-run the transaction; MySQL being unavailable (or
 * any unexpected failure) throws `TransientHandlerError`: the partition pauses and is re-delivered,
 * never dead-lettered.
 * @throws KafkaError if the group cannot be joined within `startTimeoutMs`.
 */
export async function runPipeline(options: PipelineOptions): Promise<PipelineHandle> {
  const topics = options.handlers.map((h) => h.topic);
  if (topics.length === 0) throw new RangeError('runPipeline: at least one handler is needed');
  if (new Set(topics).size !== topics.length) throw new RangeError('runPipeline: one handler per topic');
  const logger = options.logger.child({ component: 'writer-pipeline', groupId: options.groupId });
  const handlers = createBatchHandlers(options.handlers, {
    ...options,
    ...(options.batch?.maxBatchesPerTransaction === undefined
      ? {}
      : { maxBatchesPerTransaction: options.batch.maxBatchesPerTransaction }),
    ...(options.batch?.maxEventsPerTransaction === undefined
      ? {}
      : { maxEventsPerTransaction: options.batch.maxEventsPerTransaction }),
  });
  const seek = options.seekToStoredOffsets ?? true;
  const retry = { maxAttempts: 3, initialDelayMs: 100, maxDelayMs: 2000, ...options.retry };

  const consumer = new BatchConsumer({
    kafka: options.kafka,
    groupId: options.groupId,
    handlers,
    logger: options.logger,
    registry: options.registry,
    maxBatchMessages: options.batch?.maxMessages ?? 1000,
    maxBatchWaitMs: options.batch?.maxWaitMs ?? 100,
    minBatchBytes: options.batch?.minBytes ?? 1,
    partitionsConsumedConcurrently: options.batch?.partitionsConcurrently ?? 8,
    retry,
    pauseOnTransientMs: options.transientPauseMs ?? 1000,
    fromBeginning: true,
    ...(options.sessionTimeoutMs === undefined ? {} : { sessionTimeoutMs: options.sessionTimeoutMs }),
    ...(options.heartbeatIntervalMs === undefined
      ? {}
      : { heartbeatIntervalMs: options.heartbeatIntervalMs }),
    ...(options.startTimeoutMs === undefined ? {} : { startTimeoutMs: options.startTimeoutMs }),
    stopTimeoutMs: options.stopTimeoutMs ?? 10_000,
    onPartitionsAssigned: seek
      ? (assignments, control) => seekToStored(options.pool, options.groupId, assignments, control, logger)
      : undefined,
  });

  let running = false;
  await consumer.start();
  running = true;
  logger.info({ topics, seekToStoredOffsets: seek }, 'writer pipeline started');
  let stopping: Promise<void> | null = null;
  return {
    stop() {
      stopping ??= (async () => {
        running = false;
        await consumer.stop();
        logger.info('writer pipeline stopped');
      })();
      return stopping;
    },
    isRunning: () => running,
    assignedPartitions: () => consumer.assignedPartitions(),
  };
}
