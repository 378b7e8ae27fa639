/**
 * Token bucket: at most `ratePerSecond` units per second on average, bursts up to one second's
 * worth. `take` waits (abortably) until the units are available.
 */
export class Throttle {
  private tokens: number;
  private last = performance.now();

  constructor(private readonly ratePerSecond: number) {
    if (!(ratePerSecond > 0)) throw new RangeError('rate must be positive');
    this.tokens = Math.min(ratePerSecond, 1);
  }

  async take(units: number, signal?: AbortSignal): Promise<void> {
    for (;;) {
      signal?.throwIfAborted();
      const now = performance.now();
      this.tokens = Math.min(
        this.ratePerSecond,
        this.tokens + ((now - this.last) / 1_000) * this.ratePerSecond,
      );
      this.last = now;
      if (this.tokens >= units || this.tokens >= this.ratePerSecond) {
        this.tokens -= units;
        return;
      }
      const waitMs = Math.max(1, ((units - this.tokens) / this.ratePerSecond) * 1_000);
      await new Promise((resolve) => setTimeout(resolve, Math.min(waitMs, 1_000)));
    }
  }
}
