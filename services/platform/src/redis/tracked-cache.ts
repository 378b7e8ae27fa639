import { defineScripts, type ScriptDefinition, type ScriptInvokers } from './scripts.js';
import type { RedisShardClient } from './shard-client.js';
import type { TrackedReader } from './tracked-reader.js';

/** What the cache needs of a {@link TrackedReader}. */
export type InvalidationSource = Pick<TrackedReader, 'epoch' | 'live' | 'onInvalidate'>;

/** Tuning of a {@link TrackedCache}. */
export interface TrackedCacheOptions {
  /** Entries kept at most; at the limit the oldest goes (insertion order). */
  maxEntries: number;
  /**
   * The cache keys a changed Redis key concerns (default: the Redis key itself). Return every
   * candidate when a key name is ambiguous: forgetting too much only costs a read.
   */
  cacheKeysOf?: (redisKey: string) => readonly string[];
}

interface Entry<V> {
  value: V;
  epoch: number;
}

/** Reads of one key in flight; `gen` moves when the key is invalidated meanwhile. */
interface Flight {
  refs: number;
  gen: number;
}

/**
 * Values kept in the process until Redis reports that what they were read from changed
 * (server-assisted client-side caching over a {@link TrackedReader}).
 *
 * A value enters only from a read sent on the reader's tracked connection while it was live, and
 * only if, when the reply came, the reader's epoch was the same, nothing cleared the cache and no
 * invalidation of that key arrived in between: an invalidation can overtake the reply it concerns
 * (they travel on two connections), and the older value must then not be kept. A value is served
 * only while the reader is live (tracking on and heartbeats confirming delivery), so it never
 * trails a write by more than the reader's `maxStalenessMs`, and normally by the sub-millisecond
 * delivery of the invalidation.
 *
 * The owner calls {@link forget} for its own writes as they happen, so its reads after its own
 * acknowledged writes never wait for the invalidation.
 */
export class TrackedCache<V> {
  private readonly entries = new Map<string, Entry<V>>();
  private readonly flights = new Map<string, Flight>();
  private readonly maxEntries: number;
  private readonly cacheKeysOf: (redisKey: string) => readonly string[];
  private readonly detach: () => void;
  private clears = 0;

  constructor(
    private readonly reader: InvalidationSource,
    options: TrackedCacheOptions,
  ) {
    if (!Number.isInteger(options.maxEntries) || options.maxEntries < 1)
      throw new RangeError('TrackedCache: maxEntries must be a positive integer');
    this.maxEntries = options.maxEntries;
    this.cacheKeysOf = options.cacheKeysOf ?? ((key) => [key]);
    this.detach = reader.onInvalidate((keys) => {
      if (keys === null) this.clear();
      else for (const key of keys) for (const cacheKey of this.cacheKeysOf(key)) this.forget(cacheKey);
    });
  }

  /** The cached value of `key`, or undefined (absent, from an older epoch, or the reader not live). */
  get(key: string): V | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined || entry.epoch !== this.reader.epoch || !this.reader.live()) return undefined;
    return entry.value;
  }

  /** Whether a read sent now would be tracked, i.e. whether {@link fetch} may be used. */
  tracking(): boolean {
    return this.reader.live();
  }

  /**
   * Runs `read` (which must send its commands on the reader's connection, now) for `keys` (one
   * per reply, in order). For each reply whose key saw no invalidation meanwhile, `keep` says
   * what to cache: a value, or undefined to cache nothing (an entry already there is dropped).
   * `previous` is the key's entry when it is still valid, for values built up over several reads.
   * Returns the replies unchanged.
   */
  async fetch<R>(
    keys: readonly string[],
    read: () => Promise<R[]>,
    keep: (reply: R, previous: V | undefined) => V | undefined,
  ): Promise<R[]> {
    const epoch = this.reader.epoch;
    const clears = this.clears;
    const gens = keys.map((key) => this.enter(key));
    try {
      const replies = await read();
      if (epoch === this.reader.epoch && clears === this.clears) {
        replies.forEach((reply, i) => {
          const key = keys[i];
          if (key === undefined || this.flights.get(key)?.gen !== gens[i]) return;
          const previous = this.entries.get(key);
          const value = keep(reply, previous?.epoch === epoch ? previous.value : undefined);
          if (value === undefined) this.entries.delete(key);
          else this.set(key, value, epoch);
        });
      }
      return replies;
    } finally {
      for (const key of keys) this.leave(key);
    }
  }

  /** Drops `key`, including from reads in flight. */
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

  /** Stops listening to the reader and drops everything. */
  close(): void {
    this.detach();
    this.clear();
  }

  private set(key: string, value: V, epoch: number): void {
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

/** A shard's read cache with what goes with it: its reader and the scripts on the tracked connection. */
export interface ShardReadCache<V, D extends Record<string, ScriptDefinition<unknown>>> {
  values: TrackedCache<V>;
  /** `definitions` on the tracked connection: send the reads whose replies may be kept with these. */
  scripts: ScriptInvokers<D>;
  reader: TrackedReader;
  /** Closes the cache and the reader's two connections. */
  close(): void;
}

/** The read cache settings a service takes from its environment. */
export interface ReadCacheSettings {
  /** Entries per shard; 0 = no cache. */
  maxEntries: number;
  maxStalenessMs: number;
}

/**
 * Opens a read cache on `client`'s master (a {@link TrackedReader} and a {@link TrackedCache}),
 * or nothing when `settings` is undefined or has `maxEntries` 0.
 */
export function openShardReadCache<V, D extends Record<string, ScriptDefinition<unknown>>>(
  client: RedisShardClient,
  definitions: D,
  settings: ReadCacheSettings | undefined,
  cacheKeysOf: (redisKey: string) => readonly string[],
): ShardReadCache<V, D> | undefined {
  if (settings === undefined || settings.maxEntries === 0) return undefined;
  const reader = client.openTrackedReader({ maxStalenessMs: settings.maxStalenessMs });
  const values = new TrackedCache<V>(reader, { maxEntries: settings.maxEntries, cacheKeysOf });
  return {
    values,
    scripts: defineScripts(reader.redis, definitions, { shard: client.shard }),
    reader,
    close: () => {
      values.close();
      reader.close();
    },
  };
}
