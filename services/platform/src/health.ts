/**
 * A readiness check: returns or resolves when the dependency is usable; throws, rejects, or yields
 * `false` when not. Any other value counts as ready.
 */
export type ReadinessCheck = () => unknown;

export interface ReadinessReport {
  ready: boolean;
  checks: Record<string, { ok: boolean; error?: string }>;
}

/**
 * Liveness and readiness of one process. Liveness means the event loop runs (it never checks
 * dependencies: restarting a pod does not fix Redis). Readiness runs every registered check with a
 * timeout and fails while the process is shutting down, so the load balancer drains it first.
 */
export class Health {
  private readonly checks = new Map<string, ReadinessCheck>();
  private shuttingDown = false;

  constructor(private readonly checkTimeoutMs = 1_000) {}

  addReadinessCheck(name: string, check: ReadinessCheck): void {
    this.checks.set(name, check);
  }

  /** From now on readiness fails with reason `shutting-down`. Irreversible. */
  markShuttingDown(): void {
    this.shuttingDown = true;
  }

  isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  async readiness(): Promise<ReadinessReport> {
    const report: ReadinessReport = { ready: !this.shuttingDown, checks: {} };
    if (this.shuttingDown) report.checks['shutdown'] = { ok: false, error: 'shutting down' };
    await Promise.all(
      [...this.checks].map(async ([name, check]) => {
        try {
          const result = await withTimeout(Promise.resolve(check()), this.checkTimeoutMs, name);
          const ok = result !== false;
          report.checks[name] = ok ? { ok } : { ok, error: 'not ready' };
          if (!ok) report.ready = false;
        } catch (error) {
          report.checks[name] = { ok: false, error: error instanceof Error ? error.message : String(error) };
          report.ready = false;
        }
      }),
    );
    return report;
  }
}

/** Rejects with a message naming `what` when `promise` does not settle within `ms`. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
