import {
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
  type V1ConfigMap,
} from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { COUNTERSHARD, asCounterShard, type CounterShard, type CounterShardStatus } from '../resource.js';
import {
  CLEANUP_ANNOTATION,
  MIGRATION_STARTED_ANNOTATION,
  SLOTMAP_KEY,
  type SlotMapDocument,
} from '../slotmap-document.js';
import type { SlotRange } from '../planning/index.js';
import { makeKubeApi } from '@hyperscale/platform/kube';
import { isNotFound } from './api.js';

/** The ConfigMap holding a CounterShard's slot map. */
export function slotMapName(counterShardName: string): string {
  return `${counterShardName}-slotmap`;
}

/** A slot map ConfigMap as read: the raw JSON (parsed by the reconciler) and its bookkeeping. */
export interface StoredSlotMap {
  json: string | undefined;
  cleanup: string | undefined;
  /** MIGRATION_STARTED_ANNOTATION, while a migrating map is published. */
  migrationStarted: string | undefined;
  resourceVersion: string;
}

/**
 * Everything the reconciler does to the API server, each call bounded by `requestTimeoutMs`:
 * read CounterShards, read/write the slot map ConfigMap (owned by its CounterShard, so deleting
 * the CounterShard garbage-collects it), patch status, record Events.
 */
export class KubeCluster {
  private readonly core: CoreV1Api;
  private readonly custom: CustomObjectsApi;
  private readonly logger: Logger;

  constructor(
    kubeConfig: KubeConfig,
    private readonly options: { requestTimeoutMs: number; component: string; logger: Logger },
  ) {
    this.core = makeKubeApi(kubeConfig, CoreV1Api, options.requestTimeoutMs);
    this.custom = makeKubeApi(kubeConfig, CustomObjectsApi, options.requestTimeoutMs);
    this.logger = options.logger.child({ component: 'kube' });
  }

  async getCounterShard(namespace: string, name: string): Promise<CounterShard | undefined> {
    try {
      const object = await this.custom.getNamespacedCustomObject({
        group: COUNTERSHARD.group,
        version: COUNTERSHARD.version,
        plural: COUNTERSHARD.plural,
        namespace,
        name,
      });
      return asCounterShard(object);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async getSlotMap(namespace: string, name: string): Promise<StoredSlotMap | undefined> {
    try {
      const cm = await this.core.readNamespacedConfigMap({ namespace, name: slotMapName(name) });
      return {
        json: cm.data?.[SLOTMAP_KEY],
        cleanup: cm.metadata?.annotations?.[CLEANUP_ANNOTATION],
        migrationStarted: cm.metadata?.annotations?.[MIGRATION_STARTED_ANNOTATION],
        resourceVersion: cm.metadata?.resourceVersion ?? '',
      };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /**
   * Creates or replaces the slot map. Replacing carries the resourceVersion read before, so a
   * concurrent writer (a second operator that still believes it leads) makes this fail with 409
   * instead of overwriting; the reconcile then starts over from what is stored. `migrationStarted`
   * (source shard → ms on its clock) goes with a map that has migrating ranges.
   */
  async putSlotMap(
    owner: CounterShard,
    document: SlotMapDocument,
    cleanup: readonly SlotRange[],
    previous: StoredSlotMap | undefined,
    migrationStarted?: ReadonlyMap<string, number>,
  ): Promise<void> {
    const { namespace, name } = owner.metadata;
    const body: V1ConfigMap = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: slotMapName(name),
        namespace,
        labels: {
          'app.kubernetes.io/managed-by': 'countershard-operator',
          'hyperscale.dev/countershard': name,
        },
        annotations: {
          'hyperscale.dev/epoch': String(document.epoch),
          ...(cleanup.length > 0 ? { [CLEANUP_ANNOTATION]: JSON.stringify(cleanup) } : {}),
          ...(migrationStarted === undefined || migrationStarted.size === 0
            ? {}
            : { [MIGRATION_STARTED_ANNOTATION]: JSON.stringify(Object.fromEntries(migrationStarted)) }),
        },
        ownerReferences: [
          {
            apiVersion: owner.apiVersion,
            kind: owner.kind,
            name,
            uid: owner.metadata.uid,
            controller: true,
            blockOwnerDeletion: true,
          },
        ],
        ...(previous === undefined ? {} : { resourceVersion: previous.resourceVersion }),
      },
      data: { [SLOTMAP_KEY]: `${JSON.stringify(document, null, 1)}\n` },
    };
    if (previous === undefined) await this.core.createNamespacedConfigMap({ namespace, body });
    else await this.core.replaceNamespacedConfigMap({ namespace, name: slotMapName(name), body });
  }

  /** Merge-patches `.status` (the status subresource; spec and generation are untouched). */
  async patchStatus(owner: CounterShard, status: CounterShardStatus): Promise<void> {
    await this.custom.patchNamespacedCustomObjectStatus(
      {
        group: COUNTERSHARD.group,
        version: COUNTERSHARD.version,
        plural: COUNTERSHARD.plural,
        namespace: owner.metadata.namespace,
        name: owner.metadata.name,
        body: { status },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
  }

  /** Records a core/v1 Event on the CounterShard; failures are logged, never thrown. */
  async event(
    owner: CounterShard,
    type: 'Normal' | 'Warning',
    reason: string,
    message: string,
  ): Promise<void> {
    const now = new Date();
    try {
      await this.core.createNamespacedEvent({
        namespace: owner.metadata.namespace,
        body: {
          metadata: { generateName: `${owner.metadata.name}.`, namespace: owner.metadata.namespace },
          involvedObject: {
            apiVersion: owner.apiVersion,
            kind: owner.kind,
            name: owner.metadata.name,
            namespace: owner.metadata.namespace,
            uid: owner.metadata.uid,
          },
          type,
          reason,
          message: message.slice(0, 1_000),
          source: { component: this.options.component },
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
        },
      });
    } catch (err) {
      this.logger.warn({ err, reason }, 'could not record an Event');
    }
  }
}
