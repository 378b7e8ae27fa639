import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import {
  serviceUnavailable,
  type MysqlRouter,
  type RedisShardClient,
  type ScriptInvokers,
} from '@hyperscale/platform';
import type { CounterStore } from './counter-store.js';
import { RedisPathError } from './errors.js';
import { slotOf } from './keys.js';

/** The site-wide room: every heartbeat also counts here. */
export const SITE_ROOM = '_site';

/** Options of {@link PresenceStore}. */
export interface PresenceOptions {
  /** A user is online while their last heartbeat is younger than this. Default 60 s. */
  windowMs: number;
}

/** `pr:{<slot>}:<room>`: sorted set userId → last seen (ms, Redis server clock). */
export function presenceKey(room: string): string {
  return `pr:{${slotOf(room)}}:${room}`;
}

/** ARGV: userId, windowMs. ZADD now, trim entries older than the window, TTL 2 windows; returns online. */
const HEARTBEAT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('PEXPIRE', KEYS[1], window * 2)
return redis.call('ZCARD', KEYS[1])
`;

/** ARGV: windowMs. Users seen within the window (read-only). */
const COUNT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZCOUNT', KEYS[1], now - tonumber(ARGV[1]) + 1, '+inf')
`;

/** ARGV: userId, windowMs. ZREM the user; returns the users still online. */
const LEAVE = `
redis.call('ZREM', KEYS[1], ARGV[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZCOUNT', KEYS[1], now - tonumber(ARGV[2]) + 1, '+inf')
`;

const toNumber = (reply: unknown) => Number(reply);
const SCRIPTS = {
  presenceBeat: { lua: HEARTBEAT, numberOfKeys: 1, parse: toNumber },
  presenceCount: { lua: COUNT, numberOfKeys: 1, parse: toNumber },
  presenceLeave: { lua: LEAVE, numberOfKeys: 1, parse: toNumber },
};
type PresenceScript = keyof typeof SCRIPTS;
const invokers = new WeakMap<RedisShardClient, ScriptInvokers<typeof SCRIPTS>>();

function scriptsOf(client: RedisShardClient): ScriptInvokers<typeof SCRIPTS> {
  let scripts = invokers.get(client);
  if (scripts === undefined) {
    scripts = client.defineScripts(SCRIPTS);
    invokers.set(client, scripts);
  }
  return scripts;
}

/**
 * Online presence (DESIGN §2 "Presence"): a sorted set per room of userId → last seen, so a user
 * who vanishes without leaving drops out once the window passes (a +1/−1 counter would drift).
 * Rooms are routed by slot like counters, on the same shards and breakers; during a migration the
 * set is written to both shards and read from the old one. A failing shard → the `presence` table
 * on the MySQL primary (same semantics, `last_seen` in MySQL's clock); for one window after this
 * pod used the fallback for a room, reads count the union of Redis and MySQL so heartbeats taken by
 * MySQL are not lost at the switch back.
 */
export class PresenceStore {
  private readonly fallbackUntil = new Map<string, number>();
  private readonly fallbacks: Counter<'op'>;
  private readonly logger: Logger;

  constructor(
    private readonly deps: {
      counters: CounterStore;
      router: MysqlRouter;
      logger: Logger;
      registry: Registry;
    },
    private readonly options: PresenceOptions,
  ) {
    this.logger = deps.logger.child({ component: 'presence' });
    this.fallbacks = new Counter({
      name: 'hyperscale_counter_presence_fallbacks_total',
      help: 'Presence operations served by MySQL because the room shard failed',
      labelNames: ['op'],
      registers: [deps.registry],
    });
  }

  /** Records a heartbeat of `userId` in `room` (and the site room); resolves with the room's online count. */
  async heartbeat(room: string, userId: string): Promise<number> {
    const rooms = room === SITE_ROOM ? [room] : [room, SITE_ROOM];
    const counts = await Promise.all(rooms.map((r) => this.write(r, userId, 'heartbeat')));
    return counts[0] ?? 0;
  }

  /** Removes `userId` from `room` now (not from the site room, unless that is the room). */
  async leave(room: string, userId: string): Promise<number> {
    return this.write(room, userId, 'leave');
  }

  /** Users seen in `room` within the window. */
  async online(room: string): Promise<number> {
    const { shard, readFrom } = this.route(room);
    let redisMembers: number | undefined;
    try {
      redisMembers = await this.evalOn(readFrom ?? shard, room, 'presenceCount', [this.options.windowMs]);
    } catch (err) {
      if (!(err instanceof RedisPathError)) throw err;
      this.fallbacks.inc({ op: 'read' });
      return this.mysqlCount(room);
    }
    if ((this.fallbackUntil.get(room) ?? 0) < Date.now()) return redisMembers;
    return this.unionCount(readFrom ?? shard, room);
  }

  private route(room: string): { shard: string; readFrom: string | undefined } {
    const route = this.deps.counters.currentMap().route(slotOf(room));
    return { shard: route.shard, readFrom: route.migratingFrom };
  }

  private async write(room: string, userId: string, op: 'heartbeat' | 'leave'): Promise<number> {
    const { shard, readFrom } = this.route(room);
    const script: PresenceScript = op === 'heartbeat' ? 'presenceBeat' : 'presenceLeave';
    try {
      // Set-like data during a migration: written to both shards, the old one answers.
      const [answer] = await Promise.all([
        this.evalOn(readFrom ?? shard, room, script, [userId, this.options.windowMs]),
        readFrom === undefined
          ? Promise.resolve(0)
          : this.evalOn(shard, room, script, [userId, this.options.windowMs]),
      ]);
      return answer;
    } catch (err) {
      if (!(err instanceof RedisPathError)) throw err;
      this.fallbacks.inc({ op });
      this.fallbackUntil.set(room, Date.now() + this.options.windowMs);
      return this.mysqlWrite(room, userId, op);
    }
  }

  private async evalOn(
    shardName: string,
    room: string,
    script: PresenceScript,
    args: (string | number)[],
  ): Promise<number> {
    return this.deps.counters.onShard(shardName, (client: RedisShardClient) =>
      scriptsOf(client)[script]([presenceKey(room)], args),
    );
  }

  private async unionCount(shardName: string, room: string): Promise<number> {
    const members = await this.deps.counters
      .onShard(shardName, (client) =>
        client.run((redis) =>
          redis.zrangebyscore(presenceKey(room), Date.now() - this.options.windowMs, '+inf'),
        ),
      )
      .catch(() => [] as string[]);
    const rows = await this.mysqlMembers(room);
    return new Set([...members, ...rows]).size;
  }

  private async mysqlWrite(room: string, userId: string, op: 'heartbeat' | 'leave'): Promise<number> {
    try {
      if (op === 'heartbeat') {
        await this.deps.router.primary.execute(
          'INSERT INTO presence (room, user_id, last_seen) VALUES (?, ?, UTC_TIMESTAMP(3)) ON DUPLICATE KEY UPDATE last_seen = VALUES(last_seen)',
          [room, userId],
        );
      } else {
        await this.deps.router.primary.execute('DELETE FROM presence WHERE room = ? AND user_id = ?', [
          room,
          userId,
        ]);
      }
      return await this.mysqlCount(room);
    } catch (err) {
      this.logger.warn({ err, room, op }, 'presence fallback failed');
      throw serviceUnavailable('Presence is unavailable right now; retry later', 1, err);
    }
  }

  private async mysqlCount(room: string): Promise<number> {
    const [row] = await this.deps.router.primary.select<{ n: string | number }>(
      'SELECT COUNT(*) AS n FROM presence WHERE room = ? AND last_seen > UTC_TIMESTAMP(3) - INTERVAL ? MICROSECOND',
      [room, this.options.windowMs * 1000],
    );
    return Number(row?.n ?? 0);
  }

  private async mysqlMembers(room: string): Promise<string[]> {
    const rows = await this.deps.router.primary
      .select<{ user_id: string }>(
        'SELECT user_id FROM presence WHERE room = ? AND last_seen > UTC_TIMESTAMP(3) - INTERVAL ? MICROSECOND',
        [room, this.options.windowMs * 1000],
      )
      .catch(() => []);
    return rows.map((r) => r.user_id);
  }
}
