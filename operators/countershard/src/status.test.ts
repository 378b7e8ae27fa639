import { describe, expect, it } from 'vitest';
import { mergeConditions, phaseOf, statusChanged } from './status.js';

const states = {
  Ready: { status: 'True', reason: 'Stable', message: '' },
  Rebalancing: { status: 'False', reason: 'Stable', message: '' },
  ShardsReachable: { status: 'True', reason: 'Reachable', message: '' },
} as const;

describe('conditions', () => {
  it('keeps lastTransitionTime while a status stays, moves it when it flips', () => {
    const first = mergeConditions(undefined, states, 1, new Date('2026-01-01T00:00:00Z'));
    expect(first.map((c) => c.lastTransitionTime)).toEqual(Array(3).fill('2026-01-01T00:00:00Z'));
    const second = mergeConditions(
      first,
      { ...states, Ready: { status: 'False', reason: 'Rebalancing', message: 'moving' } },
      2,
      new Date('2026-01-02T00:00:00Z'),
    );
    expect(second.find((c) => c.type === 'Ready')).toMatchObject({
      status: 'False',
      observedGeneration: 2,
      lastTransitionTime: '2026-01-02T00:00:00Z',
    });
    expect(second.find((c) => c.type === 'ShardsReachable')?.lastTransitionTime).toBe('2026-01-01T00:00:00Z');
  });

  it('sees no change when only transition times differ', () => {
    const a = {
      phase: 'Stable' as const,
      conditions: mergeConditions(undefined, states, 1, new Date(1_000)),
    };
    const b = {
      phase: 'Stable' as const,
      conditions: mergeConditions(undefined, states, 1, new Date(9_000_000)),
    };
    expect(statusChanged(a, b)).toBe(false);
    expect(statusChanged(a, { ...b, phase: 'Rebalancing' })).toBe(true);
  });

  it('derives the phase', () => {
    expect(phaseOf({ migrating: false, reachable: true, valid: true })).toBe('Stable');
    expect(phaseOf({ migrating: true, reachable: true, valid: true })).toBe('Rebalancing');
    expect(phaseOf({ migrating: true, reachable: false, valid: true })).toBe('Degraded');
    expect(phaseOf({ migrating: false, reachable: true, valid: false })).toBe('Degraded');
  });
});
