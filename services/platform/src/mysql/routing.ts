import type { MysqlPoolName } from './errors.js';

/** Why a read went where it went (the `reason` label of `hyperscale_mysql_reads_total`). */
export type ReadReason = 'sticky' | 'lag' | 'replica_down' | 'default';

/** Everything the read routing decision depends on, sampled at the moment of the read. */
export interface ReadRoutingState {
  /** A replica pool exists at all (`replicaUrl` was configured). */
  readonly replicaConfigured: boolean;
  /** The replica answered its last health probe and no query failed on it since. */
  readonly replicaUp: boolean;
  /** Measured replica staleness in ms; null when unknown (e.g. the primary could not be probed). */
  readonly replicaLagMs: number | null;
  /** Lag above which reads leave the replica. */
  readonly maxReplicaLagMs: number;
  /** The caller's write inside the sticky window, if any. */
  readonly recentWrite: { readonly gtid: string | undefined } | undefined;
  /** GTID read-your-writes: a recent writer may read the replica once it applied the write's GTID. */
  readonly gtidReadYourWrites: boolean;
}

/** Where a read goes; `waitForGtid` asks the caller to confirm the replica applied that GTID first. */
export type ReadDecision =
  | { readonly target: MysqlPoolName; readonly reason: ReadReason; readonly waitForGtid?: undefined }
  | { readonly target: 'replica'; readonly reason: 'sticky'; readonly waitForGtid: string };

/**
 * The read routing rule, pure so it can be table-tested. Precedence, first match wins:
 * 1. no replica configured → primary, `default` (nothing else exists; not an incident);
 * 2. replica down → primary, `replica_down`;
 * 3. lag known and above `maxReplicaLagMs` → primary, `lag` (unknown lag does not count: when the
 *    primary cannot be probed, sending reads to it would not help);
 * 4. the caller wrote inside the sticky window → primary, `sticky`; or, in GTID mode with the
 *    write's GTID known, the replica provided it applied that GTID (`waitForGtid`), else primary;
 * 5. otherwise → replica, `default`.
 * Outage and lag come before stickiness so the metric names the infrastructure cause when there
 * is one.
 */
export function decideRead(state: ReadRoutingState): ReadDecision {
  if (!state.replicaConfigured) return { target: 'primary', reason: 'default' };
  if (!state.replicaUp) return { target: 'primary', reason: 'replica_down' };
  if (state.replicaLagMs !== null && state.replicaLagMs > state.maxReplicaLagMs) {
    return { target: 'primary', reason: 'lag' };
  }
  if (state.recentWrite !== undefined) {
    const gtid = state.recentWrite.gtid;
    if (state.gtidReadYourWrites && gtid !== undefined && gtid !== '') {
      return { target: 'replica', reason: 'sticky', waitForGtid: gtid };
    }
    return { target: 'primary', reason: 'sticky' };
  }
  return { target: 'replica', reason: 'default' };
}
