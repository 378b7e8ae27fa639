import { collectDefaultMetrics, Registry } from 'prom-client';

export { Registry } from 'prom-client';

/**
 * A fresh registry for one process, with Node.js process metrics and a `service` label on every
 * series. Services pass it to every component; nothing registers on prom-client's global registry,
 * so tests can build many apps in one process without "metric already registered" errors.
 */
export function createRegistry(options: { service: string; processMetrics?: boolean }): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service: options.service });
  if (options.processMetrics ?? true) collectDefaultMetrics({ register: registry });
  return registry;
}

/** Latency buckets (seconds) tuned for a hot path whose target p99 is a few tens of milliseconds. */
export const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
