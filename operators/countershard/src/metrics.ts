import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** The operator's Prometheus metrics (README lists them). */
export interface OperatorMetrics {
  reconcileDuration: Histogram<'result'>;
  reconcileErrors: Counter<'reason'>;
  migratingSlots: Gauge<'countershard'>;
  epoch: Gauge<'countershard'>;
  keysMoved: Counter<'countershard' | 'kind'>;
  moveRate: Gauge<'countershard'>;
  podsBehind: Gauge<'countershard'>;
}

export function operatorMetrics(registry: Registry): OperatorMetrics {
  return {
    reconcileDuration: new Histogram({
      name: 'hyperscale_operator_reconcile_duration_seconds',
      help: 'Duration of one reconcile of a CounterShard (a data move included)',
      labelNames: ['result'],
      buckets: [0.005, 0.02, 0.1, 0.5, 2, 10, 60, 300],
      registers: [registry],
    }),
    reconcileErrors: new Counter({
      name: 'hyperscale_operator_reconcile_errors_total',
      help: 'Reconciles that failed and were retried with backoff',
      labelNames: ['reason'],
      registers: [registry],
    }),
    migratingSlots: new Gauge({
      name: 'hyperscale_operator_migrating_slots',
      help: 'Slots in migrating ranges of the published slot map',
      labelNames: ['countershard'],
      registers: [registry],
    }),
    epoch: new Gauge({
      name: 'hyperscale_operator_slotmap_epoch',
      help: 'Epoch of the published slot map',
      labelNames: ['countershard'],
      registers: [registry],
    }),
    keysMoved: new Counter({
      name: 'hyperscale_operator_keys_moved_total',
      help: 'Redis keys moved to their new shard (counter hashes, set-like keys)',
      labelNames: ['countershard', 'kind'],
      registers: [registry],
    }),
    moveRate: new Gauge({
      name: 'hyperscale_operator_last_move_keys_per_second',
      help: 'Keys per second of the last completed data move',
      labelNames: ['countershard'],
      registers: [registry],
    }),
    podsBehind: new Gauge({
      name: 'hyperscale_operator_pods_behind',
      help: 'Live counter pods that have not applied the published epoch yet',
      labelNames: ['countershard'],
      registers: [registry],
    }),
  };
}
