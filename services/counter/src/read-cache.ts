import type { TrackedReader } from '@hyperscale/platform';
import type { ReadReply } from './scripts.js';

/** What a cached counter must satisfy: warm, whole (no migration partial) and no delta pending. */
export function cacheable(reply: ReadReply): reply is Extract<ReadReply, { cold: false }> {
  return !reply.cold && !reply.partial && !reply.lost && reply.idle;
}

/** What the cache needs of a {@link TrackedReader}. */
export type InvalidationSource = Pick<TrackedReader, 'epoch' | 'live' | 'onInvalidate'>;

interface Entry {
  value: number;
  epoch: number;
}

/** Reads of one key in flight; `gen` moves when the key is invalidated meanwhile. */
interface Flight {
  refs: number;
  gen: number;
}

/**
 * Counter values of one shard kept in the pod until Redis reports a change (server-assisted
 * client-side caching, {@link TrackedReader}). Keyed by the counter's hash key.
 *
 * A value enters only from a read sent on the tracked connection while tracking was live, and only
 * if, when the reply came, the tracking epoch was the same, nothing cleared the cache and no
 * invalidation of that key arrived in between: an invalidation can overtake the reply it
 * concerns (two connections), and the older value must then not be kept. A value is served only
 * while the reader is live (tracking on and heartbeats confirming delivery), so it never trails a
 * write by more than the reader's `maxStalenessMs`, and in the normal case by the sub-millisecond
 * delivery of the invalidation.
 *
 * The owner also calls {@link forget} for its own writes as they happen, so this pod's reads after
 * its own acknowledged writes never wait for the invalidation.
 *
 * Bounded: at `maxEntries` the oldest entry goes (insertion order).
 */
export class ShardReadCache {
  private readonly entries = new Map<string, Entry>();
  private readonly flights = new Map<string, Flight>();
  private clears = 0;
  private readonly detach: () => void;

  constructor(
    private readonly reader: InvalidationSource,
    private readonly maxEntries: number,
  ) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1)
      throw new RangeError('ShardReadCache: maxEntries must be a positive integer');
    this.detach = reader.onInvalidate((keys) => {
      if (keys === null) this.clear();
      else for (const key of keys) this.forgetKey(key);
    });
  }

  /** The cached value of `key`, or undefined (absent, from an older epoch, or the reader not live). */
  get(key: string): number | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined || entry.epoch !== this.reader.epoch || !this.reader.live()) return undefined;
    return entry.value;
  }

  /** Whether a read sent now would be tracked, i.e. whether {@link fetch} may be used. */
  tracking(): boolean {
    return this.reader.live();
  }

  /**
   * Runs `read` (which must send its command on the reader's connection, now) for `keys` (one per
   * reply, in order) and keeps the values that qualify. Returns the replies unchanged.
   */
  async fetch(keys: readonly string[], read: () => Promise<ReadReply[]>): Promise<ReadReply[]> {
    const epoch = this.reader.epoch;
    const clears = this.clears;
    const gens = keys.map((key) => this.enter(key));
    try {
      const replies = await read();
      if (epoch === this.reader.epoch && clears === this.clears) {
        replies.forEach((reply, i) => {
          const key = keys[i];
          if (key === undefined || !cacheable(reply) || this.flights.get(key)?.gen !== gens[i]) return;
          this.set(key, reply.value, epoch);
        });
      }
      return replies;
    } finally {
      for (const key of keys) this.leave(key);
    }
  }

  /** Drops `key` (the counter's hash key), including from reads in flight. */
  forget(key: string): void {
    this.entries.delete(key);
    const flight = this.flights.get(key);
    if (flight !== undefined) flight.gen += 1;
  }

  /** Drops everything, including reads in flight. */
  clear(): void {
    this.entries.clear();
    this.clears += 1;
  }

  /** Number of entries (metrics). */
  get size(): number {
    return this.entries.size;
  }

  close(): void {
    this.detach();
    this.clear();
  }

  /** An invalidated Redis key: the hash itself, or its pending set (`<hash>:p`). */
  private forgetKey(key: string): void {
    this.forget(key);
    if (key.endsWith(':p')) this.forget(key.slice(0, -2));
  }

  private set(key: string, value: number, epoch: number): void {
    if (!this.entries.has(key) && this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done !== true) this.entries.delete(oldest.value);
    }
    this.entries.set(key, { value, epoch });
  }

  private enter(key: string): number {
    const flight = this.flights.get(key);
    if (flight !== undefined) {
      flight.refs += 1;
      return flight.gen;
    }
    this.flights.set(key, { refs: 1, gen: 0 });
    return 0;
  }

  private leave(key: string): void {
    const flight = this.flights.get(key);
    if (flight === undefined) return;
    flight.refs -= 1;
    if (flight.refs <= 0) this.flights.delete(key);
  }
}
