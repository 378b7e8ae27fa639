/**
 * A controller work queue: keys (namespace/name) are deduplicated while waiting, a key is never
 * processed by two workers at once (a key added while it is processed runs again afterwards), and a
 * failed key is retried with capped exponential backoff. Level-triggered reconcilers need nothing
 * more: the key says WHAT to look at, the reconcile reads the current state itself.
 */
export interface WorkQueueOptions {
  /** First retry delay of a failing key. Default 500 ms. */
  baseDelayMs?: number;
  /** Cap of the retry delay. Default 30 s. */
  maxDelayMs?: number;
}

/** What a handler asks for: nothing (done), or to look again after `requeueAfterMs`. */
export interface HandlerResult {
  requeueAfterMs?: number;
}

export class WorkQueue {
  private readonly waiting = new Set<string>();
  private readonly order: string[] = [];
  private readonly active = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private notify: (() => void) | undefined;
  private closed = false;

  constructor(options: WorkQueueOptions = {}) {
    this.baseDelayMs = options.baseDelayMs ?? 500;
    this.maxDelayMs = options.maxDelayMs ?? 30_000;
  }

  add(key: string): void {
    if (this.closed) return;
    if (this.active.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.waiting.has(key)) return;
    this.waiting.add(key);
    this.order.push(key);
    this.notify?.();
  }

  /** Adds `key` after `ms` (a later add of the same key is not delayed by this). */
  addAfter(key: string, ms: number): void {
    if (this.closed) return;
    clearTimeout(this.timers.get(key));
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, ms);
    timer.unref();
    this.timers.set(key, timer);
  }

  /** Runs `handler` for keys until `signal` aborts; one key at a time per worker. */
  async run(handler: (key: string) => Promise<HandlerResult>, signal: AbortSignal): Promise<void> {
    const onAbort = (): void => this.notify?.();
    signal.addEventListener('abort', onAbort);
    try {
      while (!signal.aborted && !this.closed) {
        const key = this.order.shift();
        if (key === undefined) {
          await new Promise<void>((resolve) => (this.notify = resolve));
          this.notify = undefined;
          continue;
        }
        this.waiting.delete(key);
        this.active.add(key);
        try {
          const result = await handler(key);
          this.failures.delete(key);
          if (result.requeueAfterMs !== undefined) this.addAfter(key, result.requeueAfterMs);
        } catch {
          const n = (this.failures.get(key) ?? 0) + 1;
          this.failures.set(key, n);
          this.addAfter(key, this.retryDelay(n));
        } finally {
          this.active.delete(key);
          if (this.dirty.delete(key)) this.add(key);
        }
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  /** Delay before retry number `n` (1-based) of a failing key. */
  retryDelay(n: number): number {
    return Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** Math.min(n - 1, 16));
  }

  get length(): number {
    return this.order.length;
  }

  close(): void {
    this.closed = true;
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    this.notify?.();
  }
}
