import type { Logger } from 'pino';
import type { MysqlExecutor } from '../mysql/pool.js';
import { partitionFor } from './partition.js';

/** Fetches the high watermark (next offset to be written) of every partition of a topic. */
export type HighWatermarkSource = (topic: string) => Promise<readonly { partition: number; high: string }[]>;

/** Why a barrier could not be established or did not pass in time. */
export type BarrierOutcome =
  | { kind: 'passed'; partition: number; target: string; waitedMs: number }
  | { kind: 'timeout'; partition: number; target: string; position: string | null; waitedMs: number }
  | { kind: 'unavailable'; error: unknown };

export interface WriterBarrierOptions {
  topic: string;
  /** The writer's consumer group id, as stored in `consumer_offsets.group_id`. */
  groupId: string;
  highWatermarks: HighWatermarkSource;
  /** Where the writer commits (the MySQL primary: the replica could lag behind the writer). */
  primary: MysqlExecutor;
  logger: Logger;
  /** Budget of one high-watermark fetch. Default 1000 ms. */
  fetchTimeoutMs?: number;
  /** Pause between two reads of `consumer_offsets` while someone waits. Default 25 ms. */
  pollIntervalMs?: number;
}

interface Waiter {
  partition: number;
  target: bigint;
  deadline: number;
  started: number;
  resolve: (outcome: BarrierOutcome) => void;
  /** Settles the waiter at its deadline even while a poll hangs (a frozen primary). */
  timer?: NodeJS.Timeout;
}

type Watermarks = Map<number, bigint>;

/**
 * "Has the writer applied everything already acknowledged for this key?" — the barrier a warm
 * (and a direct MySQL write) passes before it trusts MySQL.
 *
 * 1. Fetch the topic's high watermarks with a fetch that STARTS after the call (concurrent
 *    callers share fetches: at most one in flight plus one queued), so every event acknowledged
 *    before the call has an offset below the watermark read.
 * 2. The key's partition is the one kafkajs' default partitioner picks for key = the message key.
 * 3. Poll `consumer_offsets.next_offset` of (writer group, topic, partition) on the primary until
 *    it reaches the watermark (one shared poll per interval serves every waiter), or the
 *    deadline passes.
 *
 * The writer stores its next offset in the same transaction as the rows it applied, so
 * `next_offset ≥ watermark` proves the rows of every earlier event are committed.
 */
export class WriterBarrier {
  private readonly options: Required<Omit<WriterBarrierOptions, 'logger'>>;
  private readonly logger: Logger;
  private current: Promise<Watermarks> | null = null;
  private next: Promise<Watermarks> | null = null;
  private readonly waiters = new Set<Waiter>();
  private polling = false;
  private closed = false;
  /** The writer positions of the last poll that answered (reported with a timeout). */
  private lastPositions: Map<number, bigint> | undefined;

  constructor(options: WriterBarrierOptions) {
    this.options = { fetchTimeoutMs: 1_000, pollIntervalMs: 25, ...options };
    this.logger = options.logger.child({ component: 'writer-barrier' });
  }

  /**
   * Waits until the writer passed the high watermark of `key`'s partition, or `maxWaitMs`.
   * Never throws: a failed fetch (Kafka unreachable) is `unavailable`, a MySQL error while
   * polling keeps polling until the deadline.
   */
  async waitForKey(key: string, maxWaitMs: number): Promise<BarrierOutcome> {
    const started = Date.now();
    let marks: Watermarks;
    try {
      marks = await this.freshWatermarks();
    } catch (error) {
      return { kind: 'unavailable', error };
    }
    const partition = partitionFor(key, marks.size);
    const target = marks.get(partition) ?? 0n;
    if (target === 0n) return { kind: 'passed', partition, target: '0', waitedMs: Date.now() - started };
    return new Promise<BarrierOutcome>((resolve) => {
      const waiter: Waiter = { partition, target, deadline: started + maxWaitMs, started, resolve };
      // A poll can hang for the pool's whole statement limit (a frozen primary): the deadline
      // does not wait for it.
      waiter.timer = setTimeout(
        () => {
          if (this.waiters.has(waiter)) this.settle(waiter, this.lastPositions?.get(partition) ?? null);
        },
        Math.max(0, waiter.deadline - Date.now()),
      );
      this.waiters.add(waiter);
      void this.poll();
    });
  }

  /** Releases waiters (as timeouts) and stops polling. */
  close(): void {
    this.closed = true;
    for (const waiter of this.waiters) this.settle(waiter, null);
  }

  /** A fetch of the watermarks that starts now or after the fetch in flight. */
  private freshWatermarks(): Promise<Watermarks> {
    if (this.current === null) {
      const fetching = this.fetch();
      this.current = fetching;
      void fetching
        .finally(() => {
          if (this.current === fetching) this.current = null;
        })
        .catch(() => undefined);
      return fetching;
    }
    if (this.next === null) {
      const after = this.current;
      this.next = after
        .catch(() => undefined)
        .then(() => {
          this.next = null;
          return this.freshWatermarks();
        });
    }
    return this.next;
  }

  private async fetch(): Promise<Watermarks> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`high watermarks not fetched within ${this.options.fetchTimeoutMs} ms`)),
        this.options.fetchTimeoutMs,
      );
    });
    try {
      const fetching = this.options.highWatermarks(this.options.topic);
      fetching.catch(() => undefined);
      const offsets = await Promise.race([fetching, timeout]);
      if (offsets.length === 0) throw new Error(`topic ${this.options.topic} has no partitions`);
      return new Map(offsets.map((o) => [o.partition, BigInt(o.high)]));
    } finally {
      clearTimeout(timer);
    }
  }

  private async poll(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      while (this.waiters.size > 0 && !this.closed) {
        let positions: Map<number, bigint> | undefined;
        try {
          positions = await this.positions();
          this.lastPositions = positions;
        } catch (error) {
          this.logger.warn({ err: error }, 'could not read the writer position');
        }
        const now = Date.now();
        for (const waiter of this.waiters) {
          const position = positions?.get(waiter.partition);
          if (position !== undefined && position >= waiter.target) this.settle(waiter, position, true);
          else if (now >= waiter.deadline) this.settle(waiter, position ?? null);
        }
        if (this.waiters.size > 0) await sleep(this.options.pollIntervalMs);
      }
    } finally {
      this.polling = false;
    }
  }

  private async positions(): Promise<Map<number, bigint>> {
    const rows = await this.options.primary.select<{ partition: number; next_offset: string | number }>(
      'SELECT `partition`, next_offset FROM consumer_offsets WHERE group_id = ? AND topic = ?',
      [this.options.groupId, this.options.topic],
    );
    return new Map(rows.map((row) => [Number(row.partition), BigInt(row.next_offset)]));
  }

  private settle(waiter: Waiter, position: bigint | null, passed = false): void {
    this.waiters.delete(waiter);
    clearTimeout(waiter.timer);
    const waitedMs = Date.now() - waiter.started;
    const base = { partition: waiter.partition, target: waiter.target.toString(), waitedMs };
    waiter.resolve(
      passed
        ? { kind: 'passed', ...base }
        : { kind: 'timeout', ...base, position: position === null ? null : position.toString() },
    );
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
