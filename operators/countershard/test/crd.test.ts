/**
 * The CounterShard CRD (k8s/crds/countershards.hyperscale.dev.yaml) and the operator's RBAC
 * (k8s/operator/rbac.yaml) against the REAL kube-apiserver of the local stack: what it accepts,
 * what it rejects (422 naming the field), the status subresource, the printer columns, and what
 * the operator's service account may and may not do.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import {
  ApiextensionsV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubernetesObjectApi,
  loadAllYaml,
  loadYaml,
  PatchStrategy,
  setHeaderOptions,
  V1MicroTime,
  type KubeConfig,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  kubeStatusOf,
  loadKubeConfig,
  makeKubeApi,
  operatorIdentity,
  operatorKubeconfigPath,
  requireKubeApiServer,
  type KubeStatus,
} from '../../../hack/testing/kube.js';

const GROUP = 'hyperscale.dev';
const VERSION = 'v1alpha1';
const PLURAL = 'countershards';
const CRD_NAME = `${PLURAL}.${GROUP}`;
const NAMESPACE = 'default';
const FIELD_MANAGER = 'countershard-crd-test';

const k8sDir = fileURLToPath(new URL('../../../k8s/', import.meta.url));
const runId = randomBytes(3).toString('hex');

interface ShardSpec {
  name?: unknown;
  masterName?: unknown;
  weight?: unknown;
}

interface CounterShardSpec {
  shards?: ShardSpec[];
  sentinels?: { host?: unknown; port?: unknown }[];
  migration?: { keysPerSecond?: unknown; ackTimeoutSeconds?: unknown };
  podAckStaleSeconds?: unknown;
}

interface CounterShardStatus {
  observedGeneration?: number;
  epoch?: number;
  phase?: string;
  shardCount?: number;
  shards?: { name: string; slots?: number; reachable?: boolean }[];
  migratingSlots?: number;
  keysMoved?: number;
  conditions?: {
    type: string;
    status: string;
    reason: string;
    message: string;
    lastTransitionTime: string;
    observedGeneration?: number;
  }[];
}

interface CounterShard {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; generation?: number; resourceVersion?: string };
  spec?: CounterShardSpec;
  status?: CounterShardStatus;
}

interface Table {
  columnDefinitions: { name: string; type: string }[];
  rows: { cells: unknown[] }[];
}

let admin: KubeConfig;
let objects: CustomObjectsApi;
let extensions: ApiextensionsV1Api;
/** CounterShards this run created (deleted in afterAll). */
const created = new Set<string>();

function uniqueName(what: string): string {
  return `crdtest-${what}-${runId}`;
}

function validSpec(): CounterShardSpec {
  return {
    shards: [
      { name: 'shard-0', masterName: 'shard-0', weight: 1 },
      { name: 'shard-1', masterName: 'shard-1', weight: 1 },
    ],
    sentinels: [{ host: '127.0.0.1', port: 26379 }],
    migration: { keysPerSecond: 20000 },
  };
}

function counterShard(name: string, spec: CounterShardSpec | undefined): CounterShard {
  const body: CounterShard = {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: 'CounterShard',
    metadata: { name, namespace: NAMESPACE },
  };
  if (spec !== undefined) body.spec = spec;
  return body;
}

async function create(body: CounterShard, api: CustomObjectsApi = objects): Promise<CounterShard> {
  const result = (await api.createNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace: NAMESPACE,
    plural: PLURAL,
    body,
  })) as CounterShard;
  created.add(result.metadata.name);
  return result;
}

async function read(name: string): Promise<CounterShard> {
  return (await objects.getNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace: NAMESPACE,
    plural: PLURAL,
    name,
  })) as CounterShard;
}

async function mergePatchStatus(
  name: string,
  patch: object,
  api: CustomObjectsApi = objects,
): Promise<CounterShard> {
  return (await api.patchNamespacedCustomObjectStatus(
    { group: GROUP, version: VERSION, namespace: NAMESPACE, plural: PLURAL, name, body: patch },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  )) as CounterShard;
}

/** The API server's answer to a call that must fail (the test fails when it succeeds). */
async function rejection(call: () => Promise<unknown>): Promise<KubeStatus> {
  let outcome: unknown;
  try {
    outcome = await call();
  } catch (err) {
    const status = kubeStatusOf(err);
    if (status === null) throw err;
    return status;
  }
  throw new Error(`the API server accepted the call: ${JSON.stringify(outcome).slice(0, 300)}`);
}

/** Milliseconds of a time field: client-node 1.4.0 hands MicroTime fields back as strings. */
function timeOf(value: unknown): number {
  return value instanceof Date ? value.getTime() : Date.parse(String(value));
}

/** Retries `call` until it resolves: RBAC bindings reach the authorizer's cache a moment after the write. */
async function eventually<T>(call: () => Promise<T>, withinMs = 10_000): Promise<T> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    try {
      return await call();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

beforeAll(async () => {
  admin = loadKubeConfig();
  await requireKubeApiServer(admin);
  objects = makeKubeApi(admin, CustomObjectsApi);
  extensions = makeKubeApi(admin, ApiextensionsV1Api);
});

afterAll(async () => {
  if (!objects) return;
  for (const name of created) {
    await objects
      .deleteNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: NAMESPACE,
        plural: PLURAL,
        name,
      })
      .catch((err: unknown) => {
        if (kubeStatusOf(err)?.code !== 404) throw err;
      });
  }
});

describe('the CounterShard CRD', () => {
  it('is Established with the names, scope and version of the contract', async () => {
    const crd = await extensions.readCustomResourceDefinition({ name: CRD_NAME });
    const conditions = new Map((crd.status?.conditions ?? []).map((c) => [c.type, c.status]));
    expect(conditions.get('Established')).toBe('True');
    expect(conditions.get('NamesAccepted')).toBe('True');
    expect(crd.spec.scope).toBe('Namespaced');
    expect(crd.status?.acceptedNames).toMatchObject({
      kind: 'CounterShard',
      plural: 'countershards',
      shortNames: ['cshard'],
      categories: ['hyperscale'],
    });
    expect(crd.spec.versions.map((v) => [v.name, v.served, v.storage])).toEqual([['v1alpha1', true, true]]);
    expect(crd.spec.versions[0]!.subresources?.status).toEqual({});
  });

  it('declares the printer columns Phase, Epoch, Shards, Migrating, Ready, Age', async () => {
    const crd = await extensions.readCustomResourceDefinition({ name: CRD_NAME });
    const columns = (crd.spec.versions[0]!.additionalPrinterColumns ?? []).map((c) => [c.name, c.jsonPath]);
    expect(columns).toEqual(
      expect.arrayContaining([
        ['Phase', '.status.phase'],
        ['Epoch', '.status.epoch'],
        ['Shards', '.status.shardCount'],
        ['Migrating', '.status.migratingSlots'],
        ['Ready', '.status.conditions[?(@.type=="Ready")].status'],
        ['Age', '.metadata.creationTimestamp'],
      ]),
    );
  });
});

describe('valid CounterShards', () => {
  it('accepts k8s/examples/countershard.yaml and fills in the defaults', async () => {
    const example = loadYaml<CounterShard>(readFileSync(`${k8sDir}examples/countershard.yaml`, 'utf8'));
    expect(example.metadata.namespace).toBe(NAMESPACE);
    example.metadata.name = uniqueName('example');
    const stored = await create(example);
    expect(stored.metadata.generation).toBe(1);
    expect(stored.spec).toEqual({
      shards: [
        { name: 'shard-0', masterName: 'shard-0', weight: 1 },
        { name: 'shard-1', masterName: 'shard-1', weight: 1 },
      ],
      sentinels: [26379, 26380, 26381].map((port) => ({ host: '127.0.0.1', port })),
      migration: { keysPerSecond: 20000, ackTimeoutSeconds: 300 },
      podAckStaleSeconds: 30,
    });
    expect(stored.status).toBeUndefined();
  });

  it('defaults an omitted weight to 1 and an omitted migration block to 20000 keys/s; drops unknown fields', async () => {
    const spec = {
      shards: [{ name: 'a', masterName: 'redis-a', replicas: 3 }],
      sentinels: [{ host: 'redis-sentinel', port: 26379 }],
      slotCount: 1024,
    };
    const stored = await create(counterShard(uniqueName('defaults'), spec));
    expect(stored.spec).toEqual({
      shards: [{ name: 'a', masterName: 'redis-a', weight: 1 }],
      sentinels: [{ host: 'redis-sentinel', port: 26379 }],
      migration: { keysPerSecond: 20000, ackTimeoutSeconds: 300 },
      podAckStaleSeconds: 30,
    });
  });

  it('accepts DNS names, IPv4 and IPv6 Sentinel hosts, 64 shards and the extreme weights', async () => {
    const shards = Array.from({ length: 64 }, (_, n) => ({
      name: `shard-${n}`,
      masterName: `shard-${n}`,
      weight: n === 0 ? 1 : 100,
    }));
    const stored = await create(
      counterShard(uniqueName('edges'), {
        shards,
        sentinels: [
          { host: 'redis-sentinel.hyperscale.svc.cluster.local', port: 26379 },
          { host: '10.0.0.7', port: 1 },
          { host: 'fd00::17', port: 65535 },
        ],
        migration: { keysPerSecond: 1_000_000 },
      }),
    );
    expect(stored.spec?.shards).toHaveLength(64);
    expect(stored.spec?.sentinels?.map((s) => s.host)).toEqual([
      'redis-sentinel.hyperscale.svc.cluster.local',
      '10.0.0.7',
      'fd00::17',
    ]);
  });
});

describe('invalid CounterShards are rejected with 422 naming the field', () => {
  const shard = (over: ShardSpec): ShardSpec => ({
    name: 'shard-0',
    masterName: 'shard-0',
    weight: 1,
    ...over,
  });
  const withSpec = (over: Partial<CounterShardSpec>): CounterShardSpec => ({ ...validSpec(), ...over });
  const cases: [string, CounterShardSpec | undefined, string[]][] = [
    ['no spec', undefined, ['spec', 'Required value']],
    ['zero shards', withSpec({ shards: [] }), ['spec.shards', 'at least 1 items']],
    [
      '65 shards',
      withSpec({
        shards: Array.from({ length: 65 }, (_, n) => shard({ name: `s${n}`, masterName: `s${n}` })),
      }),
      ['spec.shards', 'at most 64 items'],
    ],
    [
      'duplicate shard names',
      withSpec({ shards: [shard({}), shard({ masterName: 'shard-1' })] }),
      ['spec.shards[1]', 'Duplicate value', '"name":"shard-0"'],
    ],
    [
      'two shards with one masterName',
      withSpec({ shards: [shard({}), shard({ name: 'shard-1' })] }),
      ['spec.shards', 'every shard needs its own masterName'],
    ],
    [
      'weight 0',
      withSpec({ shards: [shard({ weight: 0 })] }),
      ['spec.shards[0].weight', 'greater than or equal to 1'],
    ],
    [
      'weight 101',
      withSpec({ shards: [shard({ weight: 101 })] }),
      ['spec.shards[0].weight', 'less than or equal to 100'],
    ],
    [
      'weight 1.5',
      withSpec({ shards: [shard({ weight: 1.5 })] }),
      ['spec.shards[0].weight', 'must be of type integer'],
    ],
    [
      'weight "2"',
      withSpec({ shards: [shard({ weight: '2' })] }),
      ['spec.shards[0].weight', 'must be of type integer'],
    ],
    [
      'shard name Shard_0',
      withSpec({ shards: [shard({ name: 'Shard_0' })] }),
      ['spec.shards[0].name', 'should match'],
    ],
    [
      'shard name ending in -',
      withSpec({ shards: [shard({ name: 'shard-' })] }),
      ['spec.shards[0].name', 'should match'],
    ],
    [
      'shard name of 64 characters',
      withSpec({ shards: [shard({ name: 'a'.repeat(64) })] }),
      ['spec.shards[0].name'],
    ],
    [
      'shard without a name',
      withSpec({ shards: [{ masterName: 'shard-0' }] }),
      ['spec.shards[0].name', 'Required value'],
    ],
    [
      'masterName with a space',
      withSpec({ shards: [shard({ masterName: 'shard 0' })] }),
      ['spec.shards[0].masterName', 'should match'],
    ],
    [
      'shard without a masterName',
      withSpec({ shards: [{ name: 'shard-0' }] }),
      ['spec.shards[0].masterName', 'Required value'],
    ],
    [
      'Sentinel host with a space',
      withSpec({ sentinels: [{ host: 'redis sentinel', port: 26379 }] }),
      ['spec.sentinels[0].host', 'should match'],
    ],
    [
      'Sentinel host with an underscore',
      withSpec({ sentinels: [{ host: 'redis_sentinel', port: 26379 }] }),
      ['spec.sentinels[0].host', 'should match'],
    ],
    [
      'Sentinel port 0',
      withSpec({ sentinels: [{ host: '127.0.0.1', port: 0 }] }),
      ['spec.sentinels[0].port', 'greater than or equal to 1'],
    ],
    [
      'Sentinel port 65536',
      withSpec({ sentinels: [{ host: '127.0.0.1', port: 65536 }] }),
      ['spec.sentinels[0].port', 'less than or equal to 65535'],
    ],
    [
      'Sentinel without a port',
      withSpec({ sentinels: [{ host: '127.0.0.1' }] }),
      ['spec.sentinels[0].port', 'Required value'],
    ],
    ['no sentinels field', { shards: validSpec().shards! }, ['spec.sentinels', 'Required value']],
    ['an empty sentinels list', withSpec({ sentinels: [] }), ['spec.sentinels', 'at least 1 items']],
    [
      'the same Sentinel twice',
      withSpec({
        sentinels: [
          { host: 'h', port: 1 },
          { host: 'h', port: 1 },
        ],
      }),
      ['spec.sentinels[1]', 'Duplicate value'],
    ],
    [
      'keysPerSecond 0',
      withSpec({ migration: { keysPerSecond: 0 } }),
      ['spec.migration.keysPerSecond', 'greater than or equal to 1'],
    ],
    [
      'keysPerSecond 1000001',
      withSpec({ migration: { keysPerSecond: 1_000_001 } }),
      ['spec.migration.keysPerSecond', 'less than or equal to 1000000'],
    ],
    [
      'ackTimeoutSeconds 0',
      withSpec({ migration: { ackTimeoutSeconds: 0 } }),
      ['spec.migration.ackTimeoutSeconds', 'greater than or equal to 1'],
    ],
    [
      'podAckStaleSeconds 0',
      withSpec({ podAckStaleSeconds: 0 }),
      ['spec.podAckStaleSeconds', 'greater than or equal to 1'],
    ],
  ];

  it.each(cases)('%s', async (what, spec, fragments) => {
    const name = uniqueName(`bad-${cases.findIndex((c) => c[0] === what)}`);
    const status = await rejection(() => create(counterShard(name, spec)));
    expect(status.code, status.message).toBe(422);
    expect(status.reason).toBe('Invalid');
    for (const fragment of fragments) expect(status.message).toContain(fragment);
  });
});

describe('the status subresource', () => {
  const name = uniqueName('status');
  const stableStatus: CounterShardStatus = {
    observedGeneration: 1,
    epoch: 1,
    phase: 'Stable',
    shardCount: 2,
    shards: [
      { name: 'shard-0', slots: 8192, reachable: true },
      { name: 'shard-1', slots: 8192, reachable: true },
    ],
    migratingSlots: 0,
    keysMoved: 0,
    conditions: [
      {
        type: 'Ready',
        status: 'True',
        reason: 'SlotMapPublished',
        message: 'every pod acknowledged epoch 1',
        lastTransitionTime: '2026-01-01T00:00:00Z',
        observedGeneration: 1,
      },
    ],
  };

  beforeAll(async () => {
    await create(counterShard(name, validSpec()));
  });

  it('takes status writes without touching spec or generation', async () => {
    const after = await mergePatchStatus(name, {
      status: stableStatus,
      // the status endpoint ignores spec changes
      spec: { migration: { keysPerSecond: 1 } },
    });
    expect(after.status).toEqual(stableStatus);
    expect(after.spec?.migration?.keysPerSecond).toBe(20000);
    expect(after.metadata.generation).toBe(1);
  });

  it('ignores status in a spec write, and bumps generation only then', async () => {
    const current = await read(name);
    current.spec!.migration = { ...current.spec!.migration, keysPerSecond: 30000 };
    current.status = { ...current.status, phase: 'Degraded', epoch: 99 };
    const after = (await objects.replaceNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: NAMESPACE,
      plural: PLURAL,
      name,
      body: current,
    })) as CounterShard;
    expect(after.spec?.migration?.keysPerSecond).toBe(30000);
    expect(after.metadata.generation).toBe(2);
    expect(after.status?.phase).toBe('Stable');
    expect(after.status?.epoch).toBe(1);

    const statusOnly = await mergePatchStatus(name, { status: { epoch: 2, observedGeneration: 2 } });
    expect(statusOnly.metadata.generation).toBe(2);
    expect(statusOnly.status?.epoch).toBe(2);
  });

  it('validates status too: an unknown phase is rejected', async () => {
    const status = await rejection(() => mergePatchStatus(name, { status: { phase: 'Exploding' } }));
    expect(status.code).toBe(422);
    expect(status.message).toContain('status.phase');
    expect(status.message).toContain('Unsupported value');
  });

  it('prints Phase, Epoch, Shards, Migrating and Ready from status (server-side table)', async () => {
    const table = (await objects.getNamespacedCustomObject(
      { group: GROUP, version: VERSION, namespace: NAMESPACE, plural: PLURAL, name },
      setHeaderOptions('Accept', 'application/json;as=Table;v=v1;g=meta.k8s.io'),
    )) as Table;
    const row = Object.fromEntries(table.columnDefinitions.map((c, i) => [c.name, table.rows[0]!.cells[i]]));
    expect(row).toMatchObject({
      Name: name,
      Phase: 'Stable',
      Epoch: 2,
      Shards: 2,
      Migrating: 0,
      Ready: 'True',
    });
    expect(row['Age']).toEqual(expect.stringMatching(/^\d+[smhd]/));
  });
});

describe('the operator service account (k8s/operator/rbac.yaml)', () => {
  let operatorObjects: CustomObjectsApi;
  let operatorCore: CoreV1Api;
  let operatorLeases: CoordinationV1Api;
  let adminCore: CoreV1Api;
  let adminLeases: CoordinationV1Api;
  const shardName = uniqueName('rbac');
  const leaseName = uniqueName('lease');
  const configMapName = uniqueName('slotmap');

  beforeAll(async () => {
    // Apply (server-side, idempotent) the manifests exactly as a cluster admin would. They stay:
    // they are the stack's standard operator permissions, other test files rely on them.
    const apply = makeKubeApi(admin, KubernetesObjectApi);
    const manifests = loadAllYaml(readFileSync(`${k8sDir}operator/rbac.yaml`, 'utf8')) as KubernetesObject[];
    for (const manifest of manifests) {
      await apply.patch(manifest, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply);
    }
    const operator = loadKubeConfig(operatorKubeconfigPath());
    operatorObjects = makeKubeApi(operator, CustomObjectsApi);
    operatorCore = makeKubeApi(operator, CoreV1Api);
    operatorLeases = makeKubeApi(operator, CoordinationV1Api);
    adminCore = makeKubeApi(admin, CoreV1Api);
    adminLeases = makeKubeApi(admin, CoordinationV1Api);
    await create(counterShard(shardName, validSpec()));
  });

  afterAll(async () => {
    const ignoreMissing = (err: unknown): void => {
      if (kubeStatusOf(err)?.code !== 404) throw err;
    };
    await adminLeases
      ?.deleteNamespacedLease({ name: leaseName, namespace: operatorIdentity.namespace })
      .catch(ignoreMissing);
    await adminCore
      ?.deleteNamespacedConfigMap({ name: configMapName, namespace: NAMESPACE })
      .catch(ignoreMissing);
  });

  it('lists CounterShards in a namespace and across all namespaces', async () => {
    const inNamespace = (await eventually(() =>
      operatorObjects.listNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: NAMESPACE,
        plural: PLURAL,
      }),
    )) as { items: CounterShard[] };
    expect(inNamespace.items.map((i) => i.metadata.name)).toContain(shardName);
    const everywhere = (await operatorObjects.listClusterCustomObject({
      group: GROUP,
      version: VERSION,
      plural: PLURAL,
    })) as { items: CounterShard[] };
    expect(everywhere.items.map((i) => i.metadata.name)).toContain(shardName);
  });

  it('writes the status of a CounterShard', async () => {
    const after = await eventually(() =>
      mergePatchStatus(shardName, { status: { phase: 'Pending', observedGeneration: 1 } }, operatorObjects),
    );
    expect(after.status?.phase).toBe('Pending');
  });

  it('creates and renews a Lease in its own namespace, and nowhere else', async () => {
    const lease = await eventually(() =>
      operatorLeases.createNamespacedLease({
        namespace: operatorIdentity.namespace,
        body: {
          metadata: { name: leaseName },
          spec: { holderIdentity: `crd-test-${runId}`, leaseDurationSeconds: 15 },
        },
      }),
    );
    expect(lease.spec?.holderIdentity).toBe(`crd-test-${runId}`);
    // renewTime is a MicroTime: the API server wants six fractional digits. A plain Date is sent
    // with three and refused (400 "cannot parse .806Z as .000000"); V1MicroTime pads them.
    const renewTime = new V1MicroTime();
    const renewed = await operatorLeases.replaceNamespacedLease({
      name: leaseName,
      namespace: operatorIdentity.namespace,
      body: { ...lease, spec: { ...lease.spec, renewTime } },
    });
    expect(timeOf(renewed.spec?.renewTime)).toBe(renewTime.getTime());

    const elsewhere = await rejection(() =>
      operatorLeases.createNamespacedLease({ namespace: NAMESPACE, body: { metadata: { name: leaseName } } }),
    );
    expect(elsewhere.code).toBe(403);
  });

  it('writes the slot-map ConfigMap and Events next to a CounterShard, but no ConfigMap in kube-system', async () => {
    const configMap = await eventually(() =>
      operatorCore.createNamespacedConfigMap({
        namespace: NAMESPACE,
        body: { metadata: { name: configMapName }, data: { 'slotmap.json': '{"epoch":1}' } },
      }),
    );
    expect(configMap.data?.['slotmap.json']).toBe('{"epoch":1}');
    const event = await operatorCore.createNamespacedEvent({
      namespace: NAMESPACE,
      body: {
        metadata: { generateName: `${shardName}.` },
        involvedObject: {
          apiVersion: `${GROUP}/${VERSION}`,
          kind: 'CounterShard',
          name: shardName,
          namespace: NAMESPACE,
        },
        reason: 'SlotMapPublished',
        message: 'epoch 1',
        type: 'Normal',
      },
    });
    expect(event.metadata?.name).toMatch(new RegExp(`^${shardName}\\.`));
    await adminCore.deleteNamespacedEvent({ name: event.metadata!.name!, namespace: NAMESPACE });

    const kubeSystem = await rejection(() =>
      operatorCore.createNamespacedConfigMap({
        namespace: 'kube-system',
        body: { metadata: { name: configMapName } },
      }),
    );
    expect(kubeSystem.code).toBe(403);
  });

  it('can NOT create, change or delete a CounterShard', async () => {
    const remove = await rejection(() =>
      operatorObjects.deleteNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: NAMESPACE,
        plural: PLURAL,
        name: shardName,
      }),
    );
    expect(remove.code).toBe(403);
    expect(remove.message).toContain(operatorIdentity.user);

    const change = await rejection(() =>
      operatorObjects.patchNamespacedCustomObject(
        {
          group: GROUP,
          version: VERSION,
          namespace: NAMESPACE,
          plural: PLURAL,
          name: shardName,
          body: { spec: { migration: { keysPerSecond: 1 } } },
        },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      ),
    );
    expect(change.code).toBe(403);

    const add = await rejection(() =>
      create(counterShard(uniqueName('by-operator'), validSpec()), operatorObjects),
    );
    expect(add.code).toBe(403);
    expect((await read(shardName)).metadata.generation).toBe(1);
  });

  it('can NOT read Secrets, neither in its own namespace nor elsewhere', async () => {
    for (const namespace of [operatorIdentity.namespace, NAMESPACE, 'kube-system']) {
      const list = await rejection(() => operatorCore.listNamespacedSecret({ namespace }));
      expect(list.code, namespace).toBe(403);
    }
    const get = await rejection(() =>
      operatorCore.readNamespacedSecret({ name: 'any', namespace: NAMESPACE }),
    );
    expect(get.code).toBe(403);
  });
});
