import { isIP } from 'node:net';
import type { RedisEndpoint } from './client.js';

/** A change of master as decided by {@link MasterTracker}. */
export interface MasterChange {
  from: RedisEndpoint;
  to: RedisEndpoint;
  /** `sentinel`: a `+switch-master` message; `reconnect`: the client came back on another address. */
  detectedBy: 'sentinel' | 'reconnect';
}

/** A parsed `+switch-master` message. */
export interface SwitchMasterMessage {
  masterName: string;
  from: RedisEndpoint;
  to: RedisEndpoint;
}

/**
 * Parses Sentinel's `+switch-master` payload `<master-name> <old-ip> <old-port> <new-ip> <new-port>`;
 * null for anything else (never throws on foreign input).
 */
export function parseSwitchMaster(message: string): SwitchMasterMessage | null {
  const parts = message.trim().split(/\s+/);
  if (parts.length !== 5) return null;
  const [masterName, fromHost, fromPort, toHost, toPort] = parts as [string, string, string, string, string];
  const from = endpoint(fromHost, fromPort);
  const to = endpoint(toHost, toPort);
  return from && to ? { masterName, from, to } : null;
}

/** Strips the IPv4-mapped IPv6 prefix that sockets may report (`::ffff:127.0.0.1`). */
export function normalizeHost(host: string): string {
  return host.startsWith('::ffff:') && isIP(host.slice(7)) === 4 ? host.slice(7) : host;
}

/** Same host (after {@link normalizeHost}) and port. */
export function sameEndpoint(a: RedisEndpoint, b: RedisEndpoint): boolean {
  return a.port === b.port && normalizeHost(a.host) === normalizeHost(b.host);
}

const formatEndpoint = (e: RedisEndpoint) => `${normalizeHost(e.host)}:${e.port}`;

/**
 * Knows the current master of one group and decides which observations are a NEW master, so one
 * failover yields exactly one change although it is seen up to N+1 times (each Sentinel publishes
 * `+switch-master`, and the client reconnects to the new address).
 *
 * Rules: an observation of the current master is a duplicate. A Sentinel message `from → to` whose
 * `from` is not the current master and whose pair was already seen recently (`historyMs`) is a late
 * duplicate of an older switch and ignored. The first connection only sets the starting point.
 * A connection address is compared only when both sides are IP literals (a socket reports an IP,
 * Sentinel may announce a hostname); otherwise Sentinel messages alone decide.
 */
export class MasterTracker {
  private master: RedisEndpoint | null = null;
  private readonly seen = new Map<string, number>();

  constructor(
    private readonly historyMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  current(): RedisEndpoint | null {
    return this.master;
  }

  /** A `+switch-master` message for this group. */
  fromSentinel(from: RedisEndpoint, to: RedisEndpoint): MasterChange | null {
    const current = this.master;
    if (current && sameEndpoint(current, to)) return null;
    const pair = `${formatEndpoint(from)}>${formatEndpoint(to)}`;
    if (current && !sameEndpoint(current, from) && this.recentlySeen(pair)) return null;
    this.remember(pair);
    this.master = to;
    return { from: current ?? from, to, detectedBy: 'sentinel' };
  }

  /** The client is connected (ready) to `address`. */
  fromConnection(address: RedisEndpoint): MasterChange | null {
    const current = this.master;
    if (current === null) {
      this.master = address;
      return null;
    }
    if (sameEndpoint(current, address)) return null;
    if (isIP(normalizeHost(current.host)) === 0 || isIP(normalizeHost(address.host)) === 0) return null;
    this.remember(`${formatEndpoint(current)}>${formatEndpoint(address)}`);
    this.master = address;
    return { from: current, to: address, detectedBy: 'reconnect' };
  }

  private recentlySeen(pair: string): boolean {
    const at = this.seen.get(pair);
    return at !== undefined && this.now() - at < this.historyMs;
  }

  private remember(pair: string): void {
    const now = this.now();
    for (const [key, at] of this.seen) if (now - at >= this.historyMs) this.seen.delete(key);
    this.seen.set(pair, now);
  }
}

function endpoint(host: string, port: string): RedisEndpoint | null {
  const n = Number(port);
  return host.length > 0 && Number.isInteger(n) && n > 0 && n < 65_536 ? { host, port: n } : null;
}
