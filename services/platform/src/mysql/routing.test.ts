import { describe, expect, it } from 'vitest';
import { decideRead } from './routing.js';
import type { ReadRoutingState } from './routing.js';

const healthy: ReadRoutingState = {
  replicaConfigured: true,
  replicaUp: true,
  replicaLagMs: 3,
  maxReplicaLagMs: 1000,
  recentWrite: undefined,
  gtidReadYourWrites: false,
};

describe('decideRead', () => {
  it.each<[string, Partial<ReadRoutingState>, { target: string; reason: string; waitForGtid?: string }]>([
    ['healthy replica, no recent write', {}, { target: 'replica', reason: 'default' }],
    ['unknown lag does not divert reads', { replicaLagMs: null }, { target: 'replica', reason: 'default' }],
    [
      'lag exactly at the threshold stays on the replica',
      { replicaLagMs: 1000 },
      { target: 'replica', reason: 'default' },
    ],
    ['lag above the threshold', { replicaLagMs: 1000.1 }, { target: 'primary', reason: 'lag' }],
    ['replica down', { replicaUp: false }, { target: 'primary', reason: 'replica_down' }],
    ['recent writer', { recentWrite: { gtid: undefined } }, { target: 'primary', reason: 'sticky' }],
    [
      'recent writer with GTID but GTID mode off',
      { recentWrite: { gtid: '0-1-5' } },
      { target: 'primary', reason: 'sticky' },
    ],
    [
      'recent writer, GTID mode, GTID known',
      { recentWrite: { gtid: '0-1-5' }, gtidReadYourWrites: true },
      { target: 'replica', reason: 'sticky', waitForGtid: '0-1-5' },
    ],
    [
      'recent writer, GTID mode, GTID unknown',
      { recentWrite: { gtid: undefined }, gtidReadYourWrites: true },
      { target: 'primary', reason: 'sticky' },
    ],
    [
      'down beats lag and sticky',
      { replicaUp: false, replicaLagMs: 99_999, recentWrite: { gtid: undefined } },
      { target: 'primary', reason: 'replica_down' },
    ],
    [
      'lag beats sticky',
      { replicaLagMs: 5000, recentWrite: { gtid: '0-1-5' }, gtidReadYourWrites: true },
      { target: 'primary', reason: 'lag' },
    ],
    [
      'no replica configured',
      { replicaConfigured: false, replicaUp: false, recentWrite: { gtid: undefined } },
      { target: 'primary', reason: 'default' },
    ],
  ])('%s', (_name, patch, expected) => {
    const d = decideRead({ ...healthy, ...patch });
    expect({
      target: d.target,
      reason: d.reason,
      ...(d.waitForGtid ? { waitForGtid: d.waitForGtid } : {}),
    }).toEqual(expected);
  });
});
