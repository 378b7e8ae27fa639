import type { Condition, CounterShardStatus, Phase } from './resource.js';

export const CONDITION_TYPES = ['Ready', 'Rebalancing', 'ShardsReachable'] as const;
export type ConditionType = (typeof CONDITION_TYPES)[number];

/** A condition as the reconciler decides it (the transition time is filled in by {@link mergeConditions}). */
export interface ConditionState {
  status: Condition['status'];
  reason: string;
  message: string;
}

/**
 * New conditions for `generation`: a condition whose status did not change keeps its
 * lastTransitionTime (kubectl and alerting rely on it meaning "since when").
 */
export function mergeConditions(
  previous: readonly Condition[] | undefined,
  next: Record<ConditionType, ConditionState>,
  generation: number,
  now: Date,
): Condition[] {
  return CONDITION_TYPES.map((type) => {
    const state = next[type];
    const before = previous?.find((c) => c.type === type);
    return {
      type,
      status: state.status,
      observedGeneration: generation,
      lastTransitionTime:
        before !== undefined && before.status === state.status
          ? before.lastTransitionTime
          : now.toISOString().replace(/\.\d{3}Z$/, 'Z'),
      reason: state.reason,
      message: state.message,
    };
  });
}

/** True when two statuses differ in anything but transition times (no write, no watch event, when equal). */
export function statusChanged(a: CounterShardStatus | undefined, b: CounterShardStatus): boolean {
  const strip = (s: CounterShardStatus | undefined): string =>
    JSON.stringify({
      ...s,
      conditions: s?.conditions?.map(({ lastTransitionTime: _ignored, ...rest }) => rest),
    });
  return strip(a) !== strip(b);
}

/** The phase shown by `kubectl get cs`. */
export function phaseOf(input: { migrating: boolean; reachable: boolean; valid: boolean }): Phase {
  if (!input.valid || !input.reachable) return 'Degraded';
  return input.migrating ? 'Rebalancing' : 'Stable';
}
