import { Counter, Gauge, type Registry } from 'prom-client';

/** Breaker states as exported by `hyperscale_breaker_state`: 0 closed, 1 half-open, 2 open. */
export type BreakerState = 'closed' | 'half-open' | 'open';

/** The gauge value of each state (also handy for dashboards and alert rules). */
export const BREAKER_STATE_VALUE: Readonly<Record<BreakerState, number>> = {
  closed: 0,
  'half-open': 1,
  open: 2,
};

/** The breaker series of one policy, bound to its `{dependency, name}` labels. */
export interface BreakerMetrics {
  setState(state: BreakerState): void;
  transition(to: BreakerState): void;
}

/**
 * Binds the breaker metrics of one policy. The metric objects are shared by every policy on the
 * same registry (get-or-create), so many policies (one per Redis shard, one per MySQL pool...) can
 * live in one process without "already registered" errors.
 */
export function breakerMetrics(
  registry: Registry,
  labels: { dependency: string; name: string },
): BreakerMetrics {
  const state = getOrCreate(
    registry,
    'hyperscale_breaker_state',
    () =>
      new Gauge({
        name: 'hyperscale_breaker_state',
        help: 'Circuit breaker state per dependency policy: 0 closed, 1 half-open, 2 open.',
        labelNames: ['dependency', 'name'],
        registers: [registry],
      }),
    Gauge,
  );
  const transitions = getOrCreate(
    registry,
    'hyperscale_breaker_transitions_total',
    () =>
      new Counter({
        name: 'hyperscale_breaker_transitions_total',
        help: 'Circuit breaker state transitions per dependency policy, by target state.',
        labelNames: ['dependency', 'name', 'to'],
        registers: [registry],
      }),
    Counter,
  );
  return {
    setState: (s) => state.set(labels, BREAKER_STATE_VALUE[s]),
    transition: (to) => transitions.inc({ ...labels, to }),
  };
}

/**
 * Returns the metric already registered under `name` on `registry`, or registers a new one, so
 * components that each bind their own label values can share one metric per registry.
 * @throws Error when `name` is registered with a different metric type.
 */
export function getOrCreate<M extends Gauge | Counter>(
  registry: Registry,
  name: string,
  create: () => M,
  kind: abstract new (...args: never[]) => M,
): M {
  const existing = registry.getSingleMetric(name);
  if (existing === undefined) return create();
  if (existing instanceof kind) return existing;
  throw new Error(`Metric ${name} is already registered with another type`);
}
