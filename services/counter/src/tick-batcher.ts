/** Options of {@link TickBatcher}. */
export interface TickBatcherOptions {
  /** Calls per batch at most; a full batch is sent at once. */
  maxBatch: number;
  /**
   * When a collected batch is sent: `setImmediate` (default) takes every call of the current
   * event-loop turn; `queueMicrotask` takes the calls of one synchronous stretch (a loop
   * submitting many) without waiting for the next turn.
   */
  schedule?: (callback: () => void) => unknown;
  /**
   * Batches in flight at once (default 1). While they are, calls wait and join the next batch,
   * sent when one comes back (or at once when it is full): under load each round trip carries
   * everything that arrived during the previous one, with no added delay when idle.
   */
  maxInFlight?: number;
}

interface Waiter<O> {
  resolve: (result: O) => void;
  reject: (err: unknown) => void;
}

/**
 * Collects calls and runs them as ONE batch: N reads of one Redis shard become one script call
 * instead of N. Every caller gets the result at its index; when the batch fails, every caller gets
 * the same error. See {@link TickBatcherOptions} for when a batch is sent.
 *
 * Why bound the batches in flight: every call to Redis is a socket write that wakes the Redis
 * process, which on a small VM costs more CPU than the script itself; waiting for the previous
 * reply turns many small batches into a few large ones exactly when the load is high.
 */
export class TickBatcher<I, O> {
  private items: I[] = [];
  private waiters: Waiter<O>[] = [];
  private scheduled = false;
  private inFlight = 0;
  private readonly maxBatch: number;
  private readonly schedule: (callback: () => void) => unknown;
  private readonly maxInFlight: number;

  constructor(
    private readonly run: (items: readonly I[]) => Promise<readonly O[]>,
    options: TickBatcherOptions,
  ) {
    this.maxBatch = options.maxBatch;
    this.schedule = options.schedule ?? setImmediate;
    this.maxInFlight = options.maxInFlight ?? 1;
    if (!Number.isInteger(this.maxBatch) || this.maxBatch < 1)
      throw new RangeError('TickBatcher: maxBatch must be an integer ≥ 1');
    if (!Number.isInteger(this.maxInFlight) || this.maxInFlight < 1)
      throw new RangeError('TickBatcher: maxInFlight must be an integer ≥ 1');
  }

  submit(item: I): Promise<O> {
    const promise = new Promise<O>((resolve, reject) => {
      this.items.push(item);
      this.waiters.push({ resolve, reject });
    });
    if (this.items.length >= this.maxBatch) this.flush();
    else if (!this.scheduled && this.inFlight < this.maxInFlight) {
      this.scheduled = true;
      this.schedule(() => {
        this.scheduled = false;
        if (this.inFlight < this.maxInFlight) this.flush();
      });
    }
    return promise;
  }

  private flush(): void {
    if (this.items.length === 0) return;
    const items = this.items.splice(0, this.maxBatch);
    const waiters = this.waiters.splice(0, this.maxBatch);
    this.inFlight += 1;
    let running: Promise<readonly O[]>;
    try {
      running = this.run(items);
    } catch (err) {
      running = Promise.reject(err);
    }
    running
      .then(
        (results) => {
          if (results.length !== items.length) {
            const err = new Error(`batch returned ${results.length} results for ${items.length} calls`);
            for (const waiter of waiters) waiter.reject(err);
            return;
          }
          waiters.forEach((waiter, i) => waiter.resolve(results[i] as O));
        },
        (err: unknown) => {
          for (const waiter of waiters) waiter.reject(err);
        },
      )
      .finally(() => {
        this.inFlight -= 1;
        // What arrived meanwhile goes now, as one batch (or several, if it filled them).
        while (this.items.length > 0 && this.inFlight < this.maxInFlight) this.flush();
      });
  }
}
