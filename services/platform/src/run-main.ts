import { createLogger } from './logger.js';
import { ConfigError } from './config.js';

/**
 * Runs a process's start-up function. A failure to start (bad configuration, unreachable
 * dependency past its timeout) is logged as one fatal JSON line — for a ConfigError it names every
 * offending variable — and the process exits with code 1 instead of an unhandled rejection.
 */
export function runMain(service: string, start: () => Promise<void>): void {
  start().catch((error: unknown) => {
    const logger = createLogger({ service });
    if (error instanceof ConfigError) {
      logger.fatal({ issues: error.issues }, error.message);
    } else {
      logger.fatal({ err: error }, 'start-up failed');
    }
    process.exitCode = 1;
    // Give pino's synchronous stdout write a tick, then exit even if sockets are still open.
    setTimeout(() => process.exit(1), 50).unref();
  });
}
