import type { Redis } from 'ioredis';

/** The newest report of one pod across shards. */
export interface PodAck {
  pod: string;
  epoch: number;
  at: number;
}

/** Parses `<epoch>:<unixMs>`; undefined for anything else. */
export function parseAck(value: string): { epoch: number; at: number } | undefined {
  const match = /^(\d+):(\d+)$/.exec(value);
  if (match === null) return undefined;
  return { epoch: Number(match[1]), at: Number(match[2]) };
}

/** Merges the acks hashes of several shards: per pod, the most recent report. */
export function mergeAcks(hashes: readonly Record<string, string>[]): PodAck[] {
  const pods = new Map<string, PodAck>();
  for (const hash of hashes) {
    for (const [pod, value] of Object.entries(hash)) {
      const ack = parseAck(value);
      if (ack === undefined) continue;
      const known = pods.get(pod);
      if (known === undefined || ack.at > known.at) pods.set(pod, { pod, ...ack });
    }
  }
  return [...pods.values()].sort((a, b) => a.pod.localeCompare(b.pod));
}

/** Result of checking whether every live pod applies `epoch`. */
export interface AckCheck {
  /** Live pods (reported within the staleness limit). */
  live: PodAck[];
  /** Live pods still on an older epoch: they hold the migration. */
  behind: PodAck[];
}

/**
 * Pods report every few seconds; one silent for `staleMs` is gone (killed, scaled down) and does
 * not hold a migration. A live pod on an older epoch does, however long it takes: moving data
 * while it still writes by the old map could lose its increments.
 */
export function checkAcks(acks: readonly PodAck[], epoch: number, now: number, staleMs: number): AckCheck {
  const live = acks.filter((a) => now - a.at <= staleMs);
  return { live, behind: live.filter((a) => a.epoch < epoch) };
}

/**
 * Reads the acknowledgement hash `key` (the slot map's `acksKey`, where services/counter's
 * SlotMapSource writes) of every shard.
 */
export async function readAcks(clients: readonly Redis[], key: string): Promise<PodAck[]> {
  const hashes = await Promise.all(clients.map((c) => c.hgetall(key)));
  return mergeAcks(hashes);
}
