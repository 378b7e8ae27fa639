import { Counter, Gauge, Histogram } from 'prom-client';
import type { Registry } from 'prom-client';

/**
 * Returns the metric already registered under `name` on `registry`, or registers a new one. Several
 * producers/consumers of one process share a registry; registering twice would throw, so they
 * share the metric instead (counters/gauges are incremented, never `set`, where they are shared).
 * Throws if the name is taken by a metric of another type.
 */
function getOrCreate<M>(
  registry: Registry,
  name: string,
  type: abstract new (...args: never[]) => M,
  create: () => M,
): M {
  const existing = registry.getSingleMetric(name);
  if (existing === undefined) return create();
  if (existing instanceof type) return existing;
  throw new Error(`metric ${name} is already registered with another type`);
}

/** A counter on `registry` (shared if it exists). */
export function counter<L extends string>(
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly L[] = [],
): Counter<L> {
  return getOrCreate(
    registry,
    name,
    Counter<L>,
    () => new Counter<L>({ name, help, labelNames, registers: [registry] }),
  );
}

/** A gauge on `registry` (shared if it exists). */
export function gauge<L extends string>(
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly L[] = [],
): Gauge<L> {
  return getOrCreate(
    registry,
    name,
    Gauge<L>,
    () => new Gauge<L>({ name, help, labelNames, registers: [registry] }),
  );
}

/** A histogram on `registry` (shared if it exists). */
export function histogram<L extends string>(
  registry: Registry,
  name: string,
  help: string,
  buckets: number[],
  labelNames: readonly L[] = [],
): Histogram<L> {
  return getOrCreate(
    registry,
    name,
    Histogram<L>,
    () => new Histogram<L>({ name, help, buckets, labelNames, registers: [registry] }),
  );
}

/** Buckets for "messages per batch" histograms (1 … 5000). */
export const BATCH_SIZE_BUCKETS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000];

/** Buckets for Kafka round trips and handler runs in seconds (1 ms … 10 s). */
export const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
