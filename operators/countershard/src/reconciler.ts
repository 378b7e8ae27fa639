import { SpanStatusCode, trace } from '@opentelemetry/api';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { checkAcks, readAcks } from './acks.js';
import type { KubeCluster, StoredSlotMap } from './kube/cluster.js';
import type { OperatorMetrics } from './metrics.js';
import { cleanupMovedSlots, moveMigratingSlots } from './migration/mover.js';
import { Throttle } from './migration/throttle.js';
import { planSlots, type SlotRange, type SlotTable } from './planning/index.js';
import type { ShardConnections } from './redis-shards.js';
import {
  counterShardSpecSchema,
  splitKey,
  type CounterShard,
  type CounterShardSpec,
  type CounterShardStatus,
} from './resource.js';
import {
  acksKeyOf,
  buildDocument,
  migratingSlotCount,
  parseCleanup,
  parseMigrationStarted,
  parseSlotMapDocument,
  slotCounts,
  SlotMapDocumentError,
  type SlotMapDocument,
} from './slotmap-document.js';
import {
  mergeConditions,
  phaseOf,
  statusChanged,
  type ConditionState,
  type ConditionType,
} from './status.js';
import type { HandlerResult } from './work-queue.js';

const tracer = trace.getTracer('@hyperscale/countershard-operator');

export interface ReconcilerSettings {
  /**
   * A pod whose last acknowledgement is older than this is gone and does not hold a migration
   * (a CounterShard's `spec.podAckStaleSeconds` overrides it).
   */
  ackStaleMs: number;
  /** Wait after the last pod acknowledged before moving (requests started under the old map finish). */
  graceMs: number;
  /** How soon a reconcile held by acknowledgements looks again. */
  ackPollMs: number;
  /** Requeue interval of a stable CounterShard (re-checks reachability, drift). */
  resyncMs: number;
  /** Deadline for reaching a shard's master. */
  shardConnectTimeoutMs: number;
}

export interface ReconcilerDeps {
  cluster: Pick<KubeCluster, 'getCounterShard' | 'getSlotMap' | 'putSlotMap' | 'patchStatus' | 'event'>;
  connections: Pick<ShardConnections, 'get'>;
  metrics: OperatorMetrics;
  logger: Logger;
  settings: ReconcilerSettings;
  now?: () => number;
}

/** A state the reconcile cannot act on (yet); the message ends up in the conditions. */
class Hold extends Error {
  override readonly name = 'Hold';
  constructor(
    readonly reason: string,
    message: string,
    readonly requeueAfterMs: number,
  ) {
    super(message);
  }
}

interface Context {
  cs: CounterShard;
  spec: CounterShardSpec;
  key: string;
  signal: AbortSignal;
  logger: Logger;
}

/**
 * Subtracted from a source shard's clock when a migration starts: should Sentinel promote a
 * replica whose clock runs behind during the migration, hashes it fills are still recognised.
 * Counting a few hashes filled just before the start as untrusted only costs their re-warm.
 */
const MIGRATION_CLOCK_MARGIN_MS = 5_000;

/**
 * The level-triggered reconcile of one CounterShard (DESIGN §3). Every call starts from what is
 * stored — the CounterShard, its slot map ConfigMap (epoch, table, migrating ranges, pending
 * clean-up) and the pods' acknowledgements in Redis — and takes the next step:
 *
 *   no slot map            → publish the initial table (epoch 1)
 *   migrating ranges       → wait for every live pod to apply the epoch, move the data, publish the
 *                            finalized map (epoch + 1) with a clean-up note
 *   clean-up note          → wait for every live pod to apply it, delete leftovers on old shards,
 *                            drop the note
 *   stable                 → plan against the spec; if slots must move, publish the new table with
 *                            migrating ranges (epoch + 1)
 *
 * Each step is idempotent, so a crash (operator killed, leadership lost) at any point is repaired
 * by the next reconcile, in this or another replica.
 */
export class Reconciler {
  private readonly now: () => number;
  /** Since when a CounterShard waits for acknowledgements of an epoch (ackTimeoutSeconds). */
  private readonly waitingSince = new Map<string, { epoch: number; at: number; warned: boolean }>();
  /** When every live pod first acknowledged an epoch (grace period), per CounterShard. */
  private readonly ackedSince = new Map<string, { epoch: number; at: number }>();
  private readonly keysMoved = new Map<string, number>();

  constructor(private readonly deps: ReconcilerDeps) {
    this.now = deps.now ?? Date.now;
  }

  /**
   * One reconcile of `key` (namespace/name), as one span: the Kubernetes and Redis calls it makes
   * are its children, so a trace shows what a step of a migration did and where its time went.
   */
  async reconcile(key: string, signal: AbortSignal): Promise<HandlerResult> {
    return tracer.startActiveSpan(`reconcile ${key}`, async (span) => {
      try {
        const result = await this.reconcileKey(key, signal);
        if (result.requeueAfterMs !== undefined)
          span.setAttribute('hyperscale.requeue_after_ms', result.requeueAfterMs);
        return result;
      } catch (err) {
        span.recordException(err instanceof Error ? err : String(err));
        span.setStatus({
          code: SpanStatusCode.ERROR,
          message: err instanceof Error ? err.message : String(err),
        });
        throw err;
      } finally {
        span.end();
      }
    });
  }

  private async reconcileKey(key: string, signal: AbortSignal): Promise<HandlerResult> {
    const stop = this.deps.metrics.reconcileDuration.startTimer();
    const { namespace, name } = splitKey(key);
    const logger = this.deps.logger.child({ countershard: key });
    try {
      const cs = await this.deps.cluster.getCounterShard(namespace, name);
      if (cs === undefined || cs.metadata.deletionTimestamp !== undefined) {
        this.forget(key);
        stop({ result: 'gone' });
        return {};
      }
      const parsed = counterShardSpecSchema.safeParse(cs.spec);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        const message = `spec.${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}`;
        await this.writeStatus(cs, undefined, undefined, { valid: false, reason: 'InvalidSpec', message });
        stop({ result: 'invalid' });
        return {};
      }
      const result = await this.step({ cs, spec: parsed.data, key, signal, logger });
      stop({ result: 'ok' });
      return result;
    } catch (err) {
      stop({ result: 'error' });
      this.deps.metrics.reconcileErrors.inc({ reason: err instanceof Error ? err.name : 'unknown' });
      if (!signal.aborted) logger.warn({ err }, 'reconcile failed; retrying with backoff');
      throw err;
    }
  }

  private async step(ctx: Context): Promise<HandlerResult> {
    const { cs, spec } = ctx;
    const stored = await this.deps.cluster.getSlotMap(cs.metadata.namespace, cs.metadata.name);
    const masters = new Map(spec.shards.map((s) => [s.name, s.masterName]));

    if (stored?.json === undefined) {
      const plan = planSlots(undefined, spec.shards);
      const document = buildDocument(
        1,
        plan.table,
        [],
        masters,
        acksKeyOf(cs.metadata.namespace, cs.metadata.name),
      );
      await this.deps.cluster.putSlotMap(cs, document, [], stored);
      ctx.logger.info({ epoch: 1, shards: plan.counts }, 'published the initial slot map');
      void this.deps.cluster.event(cs, 'Normal', 'SlotMapCreated', `epoch 1: ${describeCounts(plan.counts)}`);
      await this.writeStatus(cs, document, plan.table, { reachable: await this.reachability(ctx, document) });
      return { requeueAfterMs: 0 };
    }

    let document: SlotMapDocument;
    let table: SlotTable;
    let cleanup: SlotRange[];
    try {
      ({ document, table } = parseSlotMapDocument(stored.json));
      cleanup = parseCleanup(stored.cleanup);
    } catch (err) {
      if (!(err instanceof SlotMapDocumentError)) throw err;
      // Never overwrite a map pods may be using without understanding it: a human must look.
      await this.writeStatus(cs, undefined, undefined, {
        valid: false,
        reason: 'InvalidSlotMap',
        message: err.message,
      });
      return { requeueAfterMs: this.deps.settings.resyncMs };
    }
    this.deps.metrics.epoch.set({ countershard: ctx.key }, document.epoch);
    this.deps.metrics.migratingSlots.set({ countershard: ctx.key }, migratingSlotCount(document.migrating));

    try {
      if (document.migrating.length > 0) return await this.migrate(ctx, stored, document);
      if (cleanup.length > 0) return await this.cleanUp(ctx, stored, document, table, cleanup);
      return await this.plan(ctx, stored, document, table, masters);
    } catch (err) {
      if (!(err instanceof Hold)) throw err;
      ctx.logger.info({ reason: err.reason }, err.message);
      await this.writeStatus(cs, document, table, {
        reachable: err.reason !== 'ShardUnreachable',
        holdReason: err.reason,
        message: err.message,
      });
      return { requeueAfterMs: err.requeueAfterMs };
    }
  }

  /** Stable map: rebalance when the spec asks for another table. */
  private async plan(
    ctx: Context,
    stored: StoredSlotMap,
    document: SlotMapDocument,
    table: SlotTable,
    masters: Map<string, string>,
  ): Promise<HandlerResult> {
    const plan = planSlots(table, ctx.spec.shards);
    const declared = Object.fromEntries(ctx.spec.shards.map((s) => [s.name, s.masterName]));
    const mastersChanged = Object.entries(document.shards).some(
      ([name, info]) => declared[name] !== undefined && declared[name] !== info.masterName,
    );
    if (
      plan.movedSlots === 0 &&
      !mastersChanged &&
      Object.keys(document.shards).every((n) => n in declared)
    ) {
      await this.writeStatus(ctx.cs, document, table, { reachable: await this.reachability(ctx, document) });
      return { requeueAfterMs: this.deps.settings.resyncMs };
    }
    if (plan.movedSlots === 0) {
      // Only connection details changed (or a slot-less shard left): same table, new epoch.
      const next = buildDocument(document.epoch + 1, plan.table, [], masters, document.acksKey);
      await this.deps.cluster.putSlotMap(ctx.cs, next, [], stored);
      return { requeueAfterMs: 0 };
    }
    // Both ends of every move must answer before anything is published.
    const involved = new Set(plan.moves.flatMap((m) => [m.fromShard, m.toShard]));
    for (const s of involved) {
      const masterName = masters.get(s) ?? document.shards[s]?.masterName;
      if (masterName !== undefined) await this.clientFor(ctx, s, masterName);
    }
    for (const [name, info] of Object.entries(document.shards))
      if (!masters.has(name)) masters.set(name, info.masterName);
    // Each source shard's clock BEFORE any pod can see the migrating map: a hash filled there
    // later is not trusted by the mover (see MIGRATION_STARTED_ANNOTATION).
    const started = new Map<string, number>();
    for (const source of new Set(plan.moves.map((m) => m.fromShard))) {
      const masterName = masters.get(source);
      if (masterName === undefined) continue;
      const [seconds, micros] = await (await this.clientFor(ctx, source, masterName)).time();
      started.set(
        source,
        Math.max(0, Number(seconds) * 1_000 + Math.floor(Number(micros) / 1_000) - MIGRATION_CLOCK_MARGIN_MS),
      );
    }
    const next = buildDocument(document.epoch + 1, plan.table, plan.moves, masters, document.acksKey);
    await this.deps.cluster.putSlotMap(ctx.cs, next, [], stored, started);
    const message = `epoch ${next.epoch}: moving ${plan.movedSlots} slots (${plan.moves.length} ranges) to reach ${describeCounts(plan.counts)}`;
    ctx.logger.info({ epoch: next.epoch, movedSlots: plan.movedSlots }, 'rebalance started');
    void this.deps.cluster.event(ctx.cs, 'Normal', 'RebalanceStarted', message);
    await this.writeStatus(ctx.cs, next, plan.table, { reachable: true, message });
    return { requeueAfterMs: 0 };
  }

  /** Migrating map published: acknowledgements → move → finalized map. */
  private async migrate(
    ctx: Context,
    stored: StoredSlotMap,
    document: SlotMapDocument,
  ): Promise<HandlerResult> {
    const clients = await this.clientsOf(ctx, document);
    await this.awaitAcks(ctx, document.epoch, document.acksKey, [...clients.values()]);

    const started = performance.now();
    let moved = 0;
    const report = await moveMigratingSlots(document.migrating, {
      clients,
      migrationStarted: parseMigrationStarted(stored.migrationStarted),
      throttle: new Throttle(ctx.spec.migration.keysPerSecond),
      signal: ctx.signal,
      logger: ctx.logger,
      onKeyMoved: (kind) => {
        moved += 1;
        this.deps.metrics.keysMoved.inc({ countershard: ctx.key, kind });
      },
    });
    const seconds = (performance.now() - started) / 1_000;
    const rate = seconds > 0 ? moved / seconds : 0;
    this.deps.metrics.moveRate.set({ countershard: ctx.key }, rate);
    this.keysMoved.set(ctx.key, (this.keysMoved.get(ctx.key) ?? ctx.cs.status?.keysMoved ?? 0) + moved);

    const cleanup: SlotRange[] = document.migrating.map((m) => ({
      from: m.from,
      to: m.to,
      shard: m.fromShard,
    }));
    const finalized: SlotMapDocument = {
      ...document,
      epoch: document.epoch + 1,
      migrating: [],
      shards: Object.fromEntries(
        Object.entries(document.shards).filter(
          ([name]) => document.ranges.some((r) => r.shard === name) || cleanup.some((c) => c.shard === name),
        ),
      ),
    };
    await this.deps.cluster.putSlotMap(ctx.cs, finalized, cleanup, stored);
    const message =
      `epoch ${finalized.epoch}: moved ${report.countersMoved} counters (+${report.countersCold} made cold), ` +
      `${report.setKeysCopied} set-like keys, resumed ${report.resumed}, in ${seconds.toFixed(1)} s (${Math.round(rate)} keys/s)`;
    ctx.logger.info({ report, seconds, keysPerSecond: rate }, 'migration data moved');
    void this.deps.cluster.event(ctx.cs, 'Normal', 'RebalanceMoved', message);
    return { requeueAfterMs: 0 };
  }

  /** Finalized map published: once applied everywhere, delete what stayed on the old shards. */
  private async cleanUp(
    ctx: Context,
    stored: StoredSlotMap,
    document: SlotMapDocument,
    table: SlotTable,
    cleanup: SlotRange[],
  ): Promise<HandlerResult> {
    const clients = await this.clientsOf(ctx, document);
    await this.awaitAcks(ctx, document.epoch, document.acksKey, [...clients.values()]);
    const deleted = await cleanupMovedSlots(cleanup, {
      clients,
      throttle: new Throttle(ctx.spec.migration.keysPerSecond),
      signal: ctx.signal,
      logger: ctx.logger,
    });
    // Shards that only appeared as sources leave the map now.
    const owners = new Set(document.ranges.map((r) => r.shard));
    const next: SlotMapDocument = {
      ...document,
      shards: Object.fromEntries(Object.entries(document.shards).filter(([name]) => owners.has(name))),
    };
    await this.deps.cluster.putSlotMap(ctx.cs, next, [], stored);
    ctx.logger.info({ deleted, epoch: document.epoch }, 'rebalance completed');
    void this.deps.cluster.event(
      ctx.cs,
      'Normal',
      'RebalanceCompleted',
      `epoch ${document.epoch}: stable, ${deleted} leftover keys removed from old shards`,
    );
    await this.writeStatus(ctx.cs, next, table, { reachable: true });
    return { requeueAfterMs: 0 };
  }

  /**
   * Resolves once every live pod applies `epoch` and the grace period passed; throws Hold (the
   * reconcile comes back after ACK_POLL_MS) while a live pod is behind.
   */
  private async awaitAcks(
    ctx: Context,
    epoch: number,
    acksKey: string,
    clients: readonly Redis[],
  ): Promise<void> {
    const { ackPollMs, graceMs } = this.deps.settings;
    const ackStaleMs =
      ctx.spec.podAckStaleSeconds === undefined
        ? this.deps.settings.ackStaleMs
        : ctx.spec.podAckStaleSeconds * 1_000;
    const { behind } = checkAcks(await readAcks(clients, acksKey), epoch, this.now(), ackStaleMs);
    this.deps.metrics.podsBehind.set({ countershard: ctx.key }, behind.length);
    if (behind.length > 0) {
      this.ackedSince.delete(ctx.key);
      let waiting = this.waitingSince.get(ctx.key);
      if (waiting?.epoch !== epoch) {
        waiting = { epoch, at: this.now(), warned: false };
        this.waitingSince.set(ctx.key, waiting);
      }
      const pods = behind.map((p) => `${p.pod}@${p.epoch}`).join(', ');
      // Past ackTimeoutSeconds the migration still waits (moving data while a pod writes by an
      // older map could lose increments), but says so louder: a Warning Event and another reason.
      const overdue = this.now() - waiting.at > ctx.spec.migration.ackTimeoutSeconds * 1_000;
      const message = `waiting for ${behind.length} pod(s) to apply epoch ${epoch}: ${pods}`;
      if (overdue && !waiting.warned) {
        waiting.warned = true;
        void this.deps.cluster.event(
          ctx.cs,
          'Warning',
          'AckTimeout',
          `${message} for over ${ctx.spec.migration.ackTimeoutSeconds} s`,
        );
      }
      throw new Hold(overdue ? 'AckTimeout' : 'WaitingForAcks', message, ackPollMs);
    }
    this.waitingSince.delete(ctx.key);
    const since = this.ackedSince.get(ctx.key);
    const at = since?.epoch === epoch ? since.at : this.now();
    this.ackedSince.set(ctx.key, { epoch, at });
    const remaining = at + graceMs - this.now();
    if (remaining > 0) await sleep(remaining, ctx.signal);
  }

  private async clientsOf(ctx: Context, document: SlotMapDocument): Promise<Map<string, Redis>> {
    const clients = new Map<string, Redis>();
    for (const [name, info] of Object.entries(document.shards)) {
      clients.set(name, await this.clientFor(ctx, name, info.masterName));
    }
    return clients;
  }

  private async clientFor(ctx: Context, shard: string, masterName: string): Promise<Redis> {
    try {
      return await this.deps.connections.get({ sentinels: ctx.spec.sentinels, masterName });
    } catch (err) {
      throw new Hold(
        'ShardUnreachable',
        `shard ${shard} (master ${masterName}) is unreachable: ${(err as Error).message}`,
        2_000,
      );
    }
  }

  private async reachability(ctx: Context, document: SlotMapDocument): Promise<Map<string, boolean>> {
    const result = new Map<string, boolean>();
    await Promise.all(
      Object.entries(document.shards).map(async ([name, info]) => {
        try {
          const client = await this.deps.connections.get({
            sentinels: ctx.spec.sentinels,
            masterName: info.masterName,
          });
          await client.ping();
          result.set(name, true);
        } catch {
          result.set(name, false);
        }
      }),
    );
    return result;
  }

  private async writeStatus(
    cs: CounterShard,
    document: SlotMapDocument | undefined,
    table: SlotTable | undefined,
    input: {
      valid?: boolean;
      reachable?: boolean | Map<string, boolean>;
      reason?: string;
      holdReason?: string;
      message?: string;
    },
  ): Promise<void> {
    const valid = input.valid ?? true;
    const reachableMap = input.reachable instanceof Map ? input.reachable : undefined;
    const allReachable =
      reachableMap === undefined ? input.reachable !== false : [...reachableMap.values()].every(Boolean);
    const migratingSlots = document === undefined ? 0 : migratingSlotCount(document.migrating);
    const rebalancing = migratingSlots > 0;
    const phase = phaseOf({ migrating: rebalancing, reachable: allReachable, valid });
    const counts = table === undefined ? new Map<string, number>() : slotCounts(table);
    const unreachable =
      reachableMap === undefined ? [] : [...reachableMap].filter(([, ok]) => !ok).map(([n]) => n);
    const conditions: Record<ConditionType, ConditionState> = {
      Ready: valid
        ? allReachable && !rebalancing
          ? {
              status: 'True',
              reason: 'Stable',
              message: `epoch ${document?.epoch ?? 0} applied by the operator`,
            }
          : {
              status: 'False',
              reason: rebalancing ? 'Rebalancing' : 'ShardUnreachable',
              message: input.message ?? '',
            }
        : { status: 'False', reason: input.reason ?? 'Invalid', message: input.message ?? '' },
      Rebalancing: rebalancing
        ? {
            status: 'True',
            reason: input.holdReason ?? 'MovingSlots',
            message: input.message ?? `${migratingSlots} slots migrating`,
          }
        : { status: 'False', reason: 'Stable', message: 'no slot is migrating' },
      ShardsReachable: allReachable
        ? { status: 'True', reason: 'Reachable', message: 'every shard master answers' }
        : {
            status: 'False',
            reason: 'ShardUnreachable',
            message:
              unreachable.length > 0 ? `unreachable: ${unreachable.join(', ')}` : (input.message ?? ''),
          },
    };
    const status: CounterShardStatus = {
      observedGeneration: cs.metadata.generation,
      epoch: document?.epoch ?? cs.status?.epoch ?? 0,
      phase,
      shards: [...counts]
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([name, slots]) => ({ name, slots, reachable: reachableMap?.get(name) ?? allReachable })),
      shardCount: counts.size,
      migratingSlots,
      keysMoved: this.keysMoved.get(keyOfCs(cs)) ?? cs.status?.keysMoved ?? 0,
      conditions: mergeConditions(
        cs.status?.conditions,
        conditions,
        cs.metadata.generation,
        new Date(this.now()),
      ),
    };
    if (!statusChanged(cs.status, status)) return;
    await this.deps.cluster.patchStatus(cs, status);
    cs.status = status;
  }

  private forget(key: string): void {
    this.ackedSince.delete(key);
    this.waitingSince.delete(key);
    this.keysMoved.delete(key);
    this.deps.metrics.migratingSlots.remove({ countershard: key });
    this.deps.metrics.epoch.remove({ countershard: key });
    this.deps.metrics.podsBehind.remove({ countershard: key });
  }
}

function keyOfCs(cs: CounterShard): string {
  return `${cs.metadata.namespace}/${cs.metadata.name}`;
}

function describeCounts(counts: Record<string, number>): string {
  return Object.entries(counts)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, n]) => `${name}=${n}`)
    .join(' ');
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal.reason as Error);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
