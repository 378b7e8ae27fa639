import type { Logger } from 'pino';
import type { Health } from './health.js';
import { withTimeout } from './health.js';
import { finalFlush } from './telemetry-flush.js';

interface ShutdownStep {
  name: string;
  run: () => Promise<unknown>;
}

export interface GracefulShutdownOptions {
  logger: Logger;
  health: Health;
  /** How long readiness fails before draining starts (load balancers need a moment to notice). */
  delayMs: number;
  /** Upper bound for the whole shutdown, delay included; past it the process exits with code 1. */
  timeoutMs: number;
  /** Injected for tests; defaults to process.exit. */
  exit?: (code: number) => void;
}

/**
 * Graceful shutdown of one process: readiness fails at once, then after `delayMs` the registered
 * steps run in registration order — typically `app.close()` (stops accepting, answers new requests
 * with 503, lets in-flight ones finish), then producers flush, then pools close, and last the
 * telemetry preload's buffered spans (telemetry-flush.ts). The whole sequence
 * is bounded by `timeoutMs`; a step that fails or overruns is logged and the exit code becomes 1,
 * but the remaining steps still run within the remaining time.
 */
export class GracefulShutdown {
  private readonly steps: ShutdownStep[] = [];
  private running: Promise<number> | undefined;

  constructor(private readonly options: GracefulShutdownOptions) {}

  /** Adds a step; steps run in the order they were added. */
  add(name: string, run: () => Promise<unknown>): this {
    this.steps.push({ name, run });
    return this;
  }

  /** Runs the shutdown once (later calls return the same promise) and resolves with the exit code. */
  run(reason: string): Promise<number> {
    this.running ??= this.execute(reason);
    return this.running;
  }

  /** Binds SIGTERM and SIGINT: the first signal shuts down gracefully and then exits the process. */
  install(signals: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT']): () => void {
    const exit = this.options.exit ?? ((code: number) => process.exit(code));
    const onSignal = (signal: NodeJS.Signals) => {
      void this.run(signal).then(exit);
    };
    for (const signal of signals) process.once(signal, onSignal);
    return () => {
      for (const signal of signals) process.removeListener(signal, onSignal);
    };
  }

  private async execute(reason: string): Promise<number> {
    const { logger, health, delayMs, timeoutMs } = this.options;
    const deadline = Date.now() + timeoutMs;
    logger.info({ reason, delayMs, timeoutMs }, 'shutting down');
    health.markShuttingDown();
    let exitCode = 0;
    await sleep(Math.min(delayMs, timeoutMs));
    for (const step of this.steps) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        logger.error({ step: step.name }, 'shutdown deadline passed; skipping step');
        exitCode = 1;
        continue;
      }
      const started = Date.now();
      try {
        await withTimeout(step.run(), remaining, `shutdown step ${step.name}`);
        logger.info({ step: step.name, ms: Date.now() - started }, 'shutdown step done');
      } catch (error) {
        logger.error({ step: step.name, err: error }, 'shutdown step failed');
        exitCode = 1;
      }
    }
    // Last: buffered spans, including those of the requests drained above (bounded like a step;
    // traces that could not be sent do not make the shutdown a failure).
    const remaining = deadline - Date.now();
    if (remaining > 0) {
      await withTimeout(finalFlush(), remaining, 'telemetry flush').catch((error: unknown) => {
        logger.warn({ err: error }, 'telemetry not flushed before exit');
      });
    }
    logger.info({ exitCode }, 'shutdown complete');
    return exitCode;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
