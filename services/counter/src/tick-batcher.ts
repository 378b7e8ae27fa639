/**
 * Collects the calls made during one event-loop turn and runs them as ONE batch at `setImmediate`
 * (or at once when `maxBatch` calls are waiting): N reads of one Redis shard become one script call
 * instead of N. Every caller gets the result at its index; when the batch fails, every caller gets
 * the same error.
 */
export class TickBatcher<I, O> {
  private items: I[] = [];
  private waiters: { resolve: (result: O) => void; reject: (err: unknown) => void }[] = [];
  private scheduled = false;

  constructor(
    private readonly run: (items: readonly I[]) => Promise<readonly O[]>,
    private readonly maxBatch: number,
  ) {}

  submit(item: I): Promise<O> {
    const promise = new Promise<O>((resolve, reject) => {
      this.items.push(item);
      this.waiters.push({ resolve, reject });
    });
    if (this.items.length >= this.maxBatch) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        this.flush();
      });
    }
    return promise;
  }

  private flush(): void {
    if (this.items.length === 0) return;
    const items = this.items;
    const waiters = this.waiters;
    this.items = [];
    this.waiters = [];
    this.run(items).then(
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
    );
  }
}
