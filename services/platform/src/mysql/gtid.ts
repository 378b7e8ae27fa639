/**
 * MariaDB GTID positions (`domain-server-sequence`, comma separated, one entry per replication
 * domain), as found in `@@gtid_binlog_pos`, `@@gtid_slave_pos`, `@@gtid_current_pos` and
 * `@@last_gtid`. Sequence numbers are 64-bit, so they are kept as bigint.
 */
export interface Gtid {
  readonly domain: number;
  readonly serverId: number;
  readonly seq: bigint;
}

/** A position string that is not a list of `domain-server-seq` triples. */
export class GtidParseError extends Error {
  override readonly name = 'GtidParseError';
}

const GTID_RE = /^(\d{1,10})-(\d{1,10})-(\d{1,20})$/;

/**
 * Parses a GTID position. Empty or whitespace-only input is the empty position (a server that
 * never logged a transaction). Separators may be commas with optional whitespace/newlines (the
 * server wraps long lists). When a domain appears twice, the higher sequence wins, so the result
 * is one entry per domain, ordered by domain.
 * @throws GtidParseError on anything else.
 */
export function parseGtidPosition(text: string): Gtid[] {
  const trimmed = text.trim();
  if (trimmed === '') return [];
  const byDomain = new Map<number, Gtid>();
  for (const part of trimmed.split(',')) {
    const m = GTID_RE.exec(part.trim());
    if (m === null)
      throw new GtidParseError(
        `invalid GTID ${JSON.stringify(part.trim())} in position ${JSON.stringify(text)}`,
      );
    const gtid: Gtid = { domain: Number(m[1]), serverId: Number(m[2]), seq: BigInt(m[3] ?? '0') };
    const prev = byDomain.get(gtid.domain);
    if (prev === undefined || prev.seq < gtid.seq) byDomain.set(gtid.domain, gtid);
  }
  return [...byDomain.values()].sort((a, b) => a.domain - b.domain);
}

/** Formats a position the way the server prints it (accepted by `MASTER_GTID_WAIT`). */
export function formatGtidPosition(position: readonly Gtid[]): string {
  return position.map((g) => `${g.domain}-${g.serverId}-${g.seq}`).join(',');
}

/**
 * How many transactions `replica` still has to apply to reach `primary`: the sum over the
 * primary's domains of `max(0, primarySeq - replicaSeq)` (a domain unknown to the replica counts
 * from 0). Sequence numbers within a domain are strictly increasing under `gtid_strict_mode`, so
 * the difference is a transaction count; server ids are ignored (they change on failover, the
 * sequence does not restart). A replica ahead in some domain (e.g. local writes) is not "negative
 * lag" for the others.
 */
export function gtidTransactionsBehind(primary: readonly Gtid[], replica: readonly Gtid[]): bigint {
  const replicaSeq = new Map(replica.map((g) => [g.domain, g.seq] as const));
  let behind = 0n;
  for (const p of primary) {
    const r = replicaSeq.get(p.domain) ?? 0n;
    if (p.seq > r) behind += p.seq - r;
  }
  return behind;
}

/** True when `replica` has applied everything in `primary` (in every domain of `primary`). */
export function gtidCaughtUp(primary: readonly Gtid[], replica: readonly Gtid[]): boolean {
  return gtidTransactionsBehind(primary, replica) === 0n;
}
