/** What the router remembers about a caller's last write. */
export interface RecentWrite {
  /** Monotonic time (ms, from the injected clock) of the write. */
  readonly at: number;
  /** `@@last_gtid` of the write's transaction, when known (GTID read-your-writes mode). */
  readonly gtid: string | undefined;
}

/** Options of {@link RecentWriters}. */
export interface RecentWritersOptions {
  /** How long after a write the caller counts as "recent" (the sticky window), in ms. */
  readonly windowMs: number;
  /** Hard cap on remembered callers; the least recently written caller is evicted first. */
  readonly maxEntries: number;
  /** Monotonic clock in ms (default `performance.now`); injected by tests. */
  readonly now?: () => number;
}

/**
 * Bounded memory of who wrote recently, for sticky read-your-writes.
 *
 * A `Map` in write order: re-marking a caller moves it to the end, so the oldest write is always
 * first. That makes both bounds O(1) amortised: expired entries are swept from the front on every
 * mark, and when `maxEntries` is exceeded the front entry is evicted even if still inside its
 * window. An evicted caller merely loses stickiness (reads may be briefly stale), it never makes a
 * read fail; {@link evictions} counts it so the cap can be sized. Lookups also treat expired
 * entries as absent, so correctness does not depend on sweeping.
 */
export class RecentWriters {
  readonly #entries = new Map<string, RecentWrite>();
  readonly #windowMs: number;
  readonly #maxEntries: number;
  readonly #now: () => number;
  #evictions = 0;

  constructor(options: RecentWritersOptions) {
    if (!(options.windowMs >= 0)) throw new RangeError('windowMs must be >= 0');
    if (!(options.maxEntries >= 1)) throw new RangeError('maxEntries must be >= 1');
    this.#windowMs = options.windowMs;
    this.#maxEntries = Math.floor(options.maxEntries);
    this.#now = options.now ?? (() => performance.now());
  }

  /** Records that `callerId` wrote now (optionally with the write's GTID). */
  mark(callerId: string, gtid?: string): void {
    const now = this.#now();
    this.#entries.delete(callerId);
    this.#entries.set(callerId, { at: now, gtid });
    this.#sweep(now);
  }

  /** The caller's last write if it is still inside the window, else undefined. */
  get(callerId: string): RecentWrite | undefined {
    const entry = this.#entries.get(callerId);
    if (entry === undefined) return undefined;
    if (this.#now() - entry.at >= this.#windowMs) {
      this.#entries.delete(callerId);
      return undefined;
    }
    return entry;
  }

  /** Entries currently held (expired ones not yet swept included). */
  get size(): number {
    return this.#entries.size;
  }

  /** Callers dropped by the size cap while still inside their window, since construction. */
  get evictions(): number {
    return this.#evictions;
  }

  #sweep(now: number): void {
    for (const [key, entry] of this.#entries) {
      if (now - entry.at < this.#windowMs) break;
      this.#entries.delete(key);
    }
    while (this.#entries.size > this.#maxEntries) {
      const oldest = this.#entries.keys().next();
      if (oldest.done === true) break;
      this.#entries.delete(oldest.value);
      this.#evictions += 1;
    }
  }
}
