import { randomUUID } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { RedisShardClient } from '@hyperscale/platform';
import { SlotMap, SlotMapError } from './slot-map.js';

/** Hash where every pod reports the epoch it applies: field = podId, value = `<epoch>:<unixMs>`. */
export const ACKS_KEY = 'hyperscale:slotmap:acks';

/**
 * Where a slot map comes from. `signature` is cheap (mtime/size/inode of a file, resourceVersion
 * of a ConfigMap): the document is only fetched and parsed when it changed. Either rejects when
 * the source cannot be read.
 */
export interface SlotMapLoader {
  /** For logs: the file path or `configmap <namespace>/<name>`. */
  readonly description: string;
  signature(): Promise<string>;
  load(): Promise<unknown>;
}

/** A JSON file, e.g. a mounted ConfigMap (polling also sees the kubelet's symlink swaps). */
export function fileLoader(path: string): SlotMapLoader {
  return {
    description: path,
    async signature() {
      const info = await stat(path);
      return `${info.mtimeMs}:${info.size}:${info.ino}`;
    },
    async load() {
      return JSON.parse(await readFile(path, 'utf8')) as unknown;
    },
  };
}

/** Options of {@link SlotMapSource}. */
export interface SlotMapSourceOptions {
  /** JSON file path or a loader (ConfigMap); undefined = `fallback` (the even split) for ever. */
  path: string | SlotMapLoader | undefined;
  /** Used when `path` is undefined. */
  fallback: SlotMap | undefined;
  /** Pod identity in the acks hash (HOSTNAME in Kubernetes). Default a random UUID. */
  podId?: string;
  /** How often the file's mtime/size is checked. Default 1000 ms. */
  pollIntervalMs?: number;
  /** How often the epoch is acknowledged on every shard. Default 2000 ms. */
  ackIntervalMs?: number;
  /**
   * Shards to acknowledge on (all the pod knows). A map naming a master none of them serves is
   * rejected (kept out, not acknowledged): the operator then waits for this pod instead of moving
   * data it could not reach.
   */
  shards: readonly RedisShardClient[];
  logger: Logger;
  registry: Registry;
}

/**
 * The slot map this pod applies. Loads the file at start and re-reads it whenever its mtime or
 * size changes (polling, which also works for ConfigMap symlink swaps where fs.watch does not);
 * swapping the map is a single reference assignment, so requests in flight are never dropped. A
 * file that is missing, unreadable or invalid keeps the last good map, is logged and counted
 * (`hyperscale_counter_slotmap_reload_failures_total`). Without any good map the pod is not ready.
 * The applied epoch is acknowledged with `HSET hyperscale:slotmap:acks <podId> <epoch>:<unixMs>` on
 * every shard at start, on every change and every `ackIntervalMs` (the operator reads it before
 * moving data); acknowledgements are best effort (a down shard just misses them).
 */
export class SlotMapSource {
  readonly podId: string;
  private map: SlotMap | undefined;
  private lastSignature = '';
  private pollTimer: NodeJS.Timeout | undefined;
  private ackTimer: NodeJS.Timeout | undefined;
  private readonly listeners = new Set<(map: SlotMap) => void>();
  private readonly logger: Logger;
  private readonly failures: Counter;
  private readonly epochGauge: Gauge;
  private readonly migratingGauge: Gauge;
  private checking: Promise<void> = Promise.resolve();

  private readonly loader: SlotMapLoader | undefined;

  constructor(private readonly options: SlotMapSourceOptions) {
    this.podId = options.podId ?? randomUUID();
    this.loader = typeof options.path === 'string' ? fileLoader(options.path) : options.path;
    this.logger = options.logger.child({ component: 'slot-map' });
    this.map = options.path === undefined ? options.fallback : undefined;
    this.failures = new Counter({
      name: 'hyperscale_counter_slotmap_reload_failures_total',
      help: 'Slot map files that could not be read or were invalid (the last good map stays)',
      registers: [options.registry],
    });
    this.epochGauge = new Gauge({
      name: 'hyperscale_counter_slotmap_epoch',
      help: 'Epoch of the slot map this pod applies (-1: none yet)',
      registers: [options.registry],
    });
    this.migratingGauge = new Gauge({
      name: 'hyperscale_counter_slotmap_migrating_slots',
      help: 'Slots in migrating ranges of the applied slot map',
      registers: [options.registry],
    });
    this.updateGauges();
  }

  /** Loads the file once (when configured) and starts polling and acknowledging. */
  async start(): Promise<void> {
    await this.check();
    if (this.options.path !== undefined) {
      this.pollTimer = setInterval(
        () => void this.check().catch(() => undefined),
        this.options.pollIntervalMs ?? 1_000,
      );
      this.pollTimer.unref();
    }
    void this.ack();
    this.ackTimer = setInterval(() => void this.ack(), this.options.ackIntervalMs ?? 2_000);
    this.ackTimer.unref();
  }

  /** The map in force, or undefined when none was ever loaded (the pod is then not ready). */
  current(): SlotMap | undefined {
    return this.map;
  }

  /** Calls `listener` after every change of the applied map. */
  onChange(listener: (map: SlotMap) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Re-reads the file now if it changed (tests call this instead of waiting for the poll). */
  async check(): Promise<void> {
    // One read at a time; a caller arriving during a read waits for it and then reads again.
    const previous = this.checking;
    const run = previous.then(() => this.checkOnce());
    this.checking = run.catch(() => undefined);
    return run;
  }

  private async checkOnce(): Promise<void> {
    const loader = this.loader;
    if (loader === undefined) return;
    let signature: string;
    try {
      signature = await loader.signature();
    } catch (err) {
      if (this.lastSignature !== 'missing') this.reject(err, 'slot map cannot be read');
      this.lastSignature = 'missing';
      return;
    }
    if (signature === this.lastSignature) return;
    this.lastSignature = signature;
    try {
      this.apply(SlotMap.parse(await loader.load()));
    } catch (err) {
      this.reject(err, err instanceof SlotMapError ? 'slot map is invalid' : 'slot map cannot be read');
    }
  }

  /** Applies a map directly (tests; also what a ConfigMap watcher would call). */
  apply(next: SlotMap): void {
    const previous = this.map;
    const missing = this.unservedMaster(next);
    if (missing !== undefined) {
      this.reject(
        new SlotMapError(`shard ${missing} names a Redis master this pod has no connection for`),
        'slot map ignored (add the master to REDIS_MASTER_NAMES)',
      );
      return;
    }
    if (previous !== undefined && next.epoch < previous.epoch) {
      this.reject(
        new SlotMapError(`epoch ${next.epoch} is older than ${previous.epoch}`),
        'slot map ignored',
      );
      return;
    }
    this.map = next;
    this.updateGauges();
    if (previous?.epoch !== next.epoch) {
      this.logger.info({ epoch: next.epoch, migrating: next.migratingSlots() }, 'slot map applied');
    }
    for (const listener of this.listeners) {
      try {
        listener(next);
      } catch (err) {
        this.logger.error({ err }, 'slot map listener failed');
      }
    }
    void this.ack();
  }

  /** Writes this pod's epoch to the acks hash of every shard (best effort, bounded by the client). */
  async ack(): Promise<void> {
    const map = this.map;
    if (map === undefined) return;
    const value = `${map.epoch}:${Date.now()}`;
    const key = map.document.acksKey ?? ACKS_KEY;
    await Promise.all(
      this.options.shards.map((shard) =>
        shard
          .run((redis) => redis.hset(key, this.podId, value))
          .catch((err: unknown) => {
            this.logger.debug({ err, shard: shard.shard }, 'slot map epoch not acknowledged on shard');
          }),
      ),
    );
  }

  /** Stops polling and acknowledging; removes this pod's acknowledgement (best effort). */
  async close(): Promise<void> {
    clearInterval(this.pollTimer);
    clearInterval(this.ackTimer);
    const key = this.map?.document.acksKey ?? ACKS_KEY;
    await Promise.all(
      this.options.shards.map((shard) =>
        shard.run((redis) => redis.hdel(key, this.podId)).catch(() => undefined),
      ),
    );
  }

  private unservedMaster(map: SlotMap): string | undefined {
    const served = new Set<string>();
    for (const shard of this.options.shards) {
      served.add(shard.shard);
      if (shard.masterName !== undefined) served.add(shard.masterName);
    }
    return Object.entries(map.document.shards).find(
      ([name, info]) => !served.has(info.masterName) && !served.has(name),
    )?.[0];
  }

  private reject(err: unknown, message: string): void {
    this.failures.inc();
    this.logger.error({ err, source: this.loader?.description, keptEpoch: this.map?.epoch ?? null }, message);
  }

  private updateGauges(): void {
    this.epochGauge.set(this.map?.epoch ?? -1);
    this.migratingGauge.set(this.map?.migratingSlots() ?? 0);
  }
}
