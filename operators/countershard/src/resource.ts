import { z } from 'zod';

/** API coordinates of the CounterShard custom resource (k8s/crds/countershards.hyperscale.dev.yaml). */
export const COUNTERSHARD = {
  group: 'hyperscale.dev',
  version: 'v1alpha1',
  plural: 'countershards',
  kind: 'CounterShard',
} as const;

export const API_VERSION = `${COUNTERSHARD.group}/${COUNTERSHARD.version}`;

const dnsLabel = z
  .string()
  .min(1)
  .max(63)
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);

/**
 * The spec as the operator relies on it. The API server already enforces the CRD's schema; this
 * second check protects the planner from objects stored before a schema change (a bad spec sets
 * Ready=False with the reason instead of crashing the reconcile loop).
 */
export const counterShardSpecSchema = z
  .object({
    shards: z
      .array(
        z.object({
          name: dnsLabel,
          masterName: dnsLabel,
          weight: z.number().int().min(1).max(100).default(1),
        }),
      )
      .min(1),
    sentinels: z
      .array(z.object({ host: z.string().min(1).max(253), port: z.number().int().min(1).max(65_535) }))
      .min(1),
    migration: z
      .object({
        keysPerSecond: z.number().int().min(1).max(1_000_000).default(20_000),
        ackTimeoutSeconds: z.number().int().min(1).default(300),
      })
      .prefault({}),
    podAckStaleSeconds: z.number().int().min(1).max(3_600).optional(),
  })
  .superRefine((spec, ctx) => {
    const seen = new Set<string>();
    const masters = new Set<string>();
    spec.shards.forEach((shard, i) => {
      if (seen.has(shard.name))
        ctx.addIssue({ code: 'custom', path: ['shards', i, 'name'], message: 'duplicate shard name' });
      if (masters.has(shard.masterName))
        ctx.addIssue({ code: 'custom', path: ['shards', i, 'masterName'], message: 'duplicate masterName' });
      seen.add(shard.name);
      masters.add(shard.masterName);
    });
  });

export type CounterShardSpec = z.infer<typeof counterShardSpecSchema>;

/** A metav1.Condition. */
export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  observedGeneration: number;
  lastTransitionTime: string;
  reason: string;
  message: string;
}

export type Phase = 'Pending' | 'Stable' | 'Rebalancing' | 'Degraded';

export interface CounterShardStatus {
  observedGeneration?: number;
  epoch?: number;
  phase?: Phase;
  shards?: { name: string; slots: number; reachable: boolean }[];
  shardCount?: number;
  migratingSlots?: number;
  keysMoved?: number;
  conditions?: Condition[];
}

export interface ObjectMeta {
  name: string;
  namespace: string;
  uid: string;
  generation: number;
  resourceVersion?: string;
  deletionTimestamp?: string;
}

/** A CounterShard as read from the API server (spec not yet validated). */
export interface CounterShard {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec: unknown;
  status?: CounterShardStatus;
}

/** Namespace/name, the work queue key. */
export function keyOf(object: { metadata: { namespace: string; name: string } }): string {
  return `${object.metadata.namespace}/${object.metadata.name}`;
}

export function splitKey(key: string): { namespace: string; name: string } {
  const slash = key.indexOf('/');
  return { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}

/** Narrows an object from the API (JSON) to a CounterShard, or undefined when it lacks metadata. */
export function asCounterShard(value: unknown): CounterShard | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const meta = (value as { metadata?: Partial<ObjectMeta> }).metadata;
  if (meta?.name === undefined || meta.namespace === undefined || meta.uid === undefined) return undefined;
  const object = value as CounterShard;
  return { ...object, metadata: { ...object.metadata, generation: meta.generation ?? 0 } };
}
