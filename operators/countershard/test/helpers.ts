/**
 * Set-up shared by the operator's integration tests: the local kube-apiserver (hack/stack.sh),
 * the operator's RBAC applied from k8s/operator/rbac.yaml, CounterShard objects, and the REAL
 * operator process (`operators/countershard/dist/main.js`) running as the operator's service account.
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import {
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubernetesObjectApi,
  loadAllYaml,
  type KubeConfig,
  type KubernetesObject,
} from '@kubernetes/client-node';
import {
  loadKubeConfig,
  makeKubeApi,
  operatorKubeconfigPath,
  requireKubeApiServer,
} from '../../../hack/testing/kube.js';
import { stack } from '../../../hack/testing/stack-control.js';
import type { CounterShardStatus } from '../src/resource.js';
import { freePort } from '../../../hack/testing/ports.js';
export { freePort };

export const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));
export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
export const SENTINELS = stack.redis.sentinels.map(({ host, port }) => ({ host, port }));

export async function waitFor<T>(
  check: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs: number,
  what: string,
  intervalMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      const reason = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${reason}`);
    }
    await sleep(intervalMs);
  }
}

/** Creates or replaces every object of a YAML file (kubectl apply, without the three-way merge). */
export async function applyManifest(kc: KubeConfig, path: string): Promise<void> {
  const api = KubernetesObjectApi.makeApiClient(kc);
  const objects = loadAllYaml(await readFile(path, 'utf8')) as KubernetesObject[];
  for (const object of objects) {
    try {
      const existing = await api.read(object as KubernetesObject & { metadata: { name: string } });
      await api.replace({
        ...object,
        metadata: { ...object.metadata, resourceVersion: existing.metadata?.resourceVersion },
      });
    } catch (err) {
      if ((err as { code?: number }).code !== 404) throw err;
      await api.create(object);
    }
  }
}

/** Admin clients of the local API server (fails saying how to start it when it is down). */
export async function kubeClients() {
  const kc = loadKubeConfig();
  await requireKubeApiServer(kc);
  await applyManifest(kc, `${repoRoot}/k8s/operator/rbac.yaml`);
  return {
    kc,
    core: makeKubeApi(kc, CoreV1Api),
    custom: makeKubeApi(kc, CustomObjectsApi),
    leases: makeKubeApi(kc, CoordinationV1Api),
  };
}
export type KubeClients = Awaited<ReturnType<typeof kubeClients>>;

export interface ShardSpec {
  name: string;
  masterName: string;
  weight: number;
}

export function counterShardBody(
  name: string,
  namespace: string,
  shards: ShardSpec[],
  keysPerSecond: number,
) {
  return {
    apiVersion: 'hyperscale.dev/v1alpha1',
    kind: 'CounterShard',
    metadata: { name, namespace },
    // Pods acknowledge every 500 ms in these tests: one silent for 4 s is gone.
    spec: { shards, sentinels: SENTINELS, migration: { keysPerSecond }, podAckStaleSeconds: 4 },
  };
}

const cs = { group: 'hyperscale.dev', version: 'v1alpha1', plural: 'countershards' } as const;

export async function createCounterShard(k: KubeClients, body: ReturnType<typeof counterShardBody>) {
  await k.custom.createNamespacedCustomObject({ ...cs, namespace: body.metadata.namespace, body });
}

interface StoredCounterShard {
  metadata: { generation: number; resourceVersion: string };
  spec: { shards: ShardSpec[]; migration: { keysPerSecond: number } };
  status?: CounterShardStatus;
}

export async function getCounterShard(
  k: KubeClients,
  namespace: string,
  name: string,
): Promise<StoredCounterShard> {
  return (await k.custom.getNamespacedCustomObject({ ...cs, namespace, name })) as StoredCounterShard;
}

/** Replaces `spec.shards` (and optionally the move rate); returns the new generation. */
export async function setShards(
  k: KubeClients,
  namespace: string,
  name: string,
  shards: ShardSpec[],
  keysPerSecond?: number,
): Promise<number> {
  for (;;) {
    const current = await getCounterShard(k, namespace, name);
    const body = {
      ...current,
      spec: {
        ...current.spec,
        shards,
        migration: { ...current.spec.migration, ...(keysPerSecond === undefined ? {} : { keysPerSecond }) },
      },
    };
    try {
      const updated = (await k.custom.replaceNamespacedCustomObject({
        ...cs,
        namespace,
        name,
        body,
      })) as StoredCounterShard;
      return updated.metadata.generation;
    } catch (err) {
      if ((err as { code?: number }).code !== 409) throw err;
    }
  }
}

export async function deleteCounterShard(k: KubeClients, namespace: string, name: string): Promise<void> {
  await k.custom.deleteNamespacedCustomObject({ ...cs, namespace, name }).catch(() => undefined);
  await k.core.deleteNamespacedConfigMap({ namespace, name: `${name}-slotmap` }).catch(() => undefined);
}

/** The slot map document published for a CounterShard (undefined while there is none). */
export async function slotMapOf(k: KubeClients, namespace: string, name: string) {
  try {
    const cm = await k.core.readNamespacedConfigMap({ namespace, name: `${name}-slotmap` });
    const json = cm.data?.['slotmap.json'];
    if (json === undefined) return undefined;
    return {
      configMap: cm,
      document: JSON.parse(json) as {
        epoch: number;
        ranges: { from: number; to: number; shard: string }[];
        shards: Record<string, { masterName: string }>;
        migrating: { from: number; to: number; fromShard: string; toShard: string }[];
        acksKey: string;
      },
    };
  } catch (err) {
    if ((err as { code?: number }).code === 404) return undefined;
    throw err;
  }
}

/** Slots per shard of a document's ranges. */
export function slotsPerShard(ranges: { from: number; to: number; shard: string }[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of ranges) counts[r.shard] = (counts[r.shard] ?? 0) + r.to - r.from + 1;
  return counts;
}

/** One running operator process. */
export interface OperatorProcess {
  identity: string;
  metricsPort: number;
  output: string[];
  exited: Promise<number | null>;
  kill9(): Promise<void>;
  stop(): Promise<void>;
  /** The value of a metric line (first match of `name{...}` containing `labelText`), or undefined. */
  metric(name: string, labelText?: string): Promise<number | undefined>;
}

export async function startOperator(options: {
  identity: string;
  namespace: string;
  leaseName: string;
  extraEnv?: Record<string, string>;
}): Promise<OperatorProcess> {
  const metricsPort = await freePort();
  const child = spawn(process.execPath, ['--enable-source-maps', 'operators/countershard/dist/main.js'], {
    cwd: repoRoot,
    env: {
      PATH: process.env['PATH'] ?? '',
      HOME: process.env['HOME'] ?? '/tmp',
      LOG_LEVEL: process.env['HS_TEST_CHILD_LOG_LEVEL'] ?? 'info',
      KUBECONFIG: operatorKubeconfigPath(),
      WATCH_NAMESPACE: options.namespace,
      POD_NAME: options.identity,
      LEADER_ELECTION_NAMESPACE: 'hyperscale-system',
      LEADER_ELECTION_NAME: options.leaseName,
      LEASE_DURATION_MS: '4000',
      LEASE_RENEW_DEADLINE_MS: '3000',
      LEASE_RETRY_PERIOD_MS: '500',
      METRICS_HOST: '127.0.0.1',
      METRICS_PORT: String(metricsPort),
      RESYNC_MS: '5000',
      ACK_POLL_MS: '200',
      MIGRATION_GRACE_MS: '1500',
      ...options.extraEnv,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  const keep = (chunk: Buffer) => {
    output.push(chunk.toString());
    if (output.length > 2_000) output.splice(0, output.length - 2_000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  let code: number | null | undefined;
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (c) => {
      code = c;
      resolve(c);
    }),
  );
  const metrics = async (): Promise<string> => {
    const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`, {
      signal: AbortSignal.timeout(2_000),
    });
    return res.text();
  };
  await waitFor(
    async () => {
      if (code !== undefined) throw new Error(`operator exited during start-up:\n${output.join('')}`);
      return (await fetch(`http://127.0.0.1:${metricsPort}/livez`, { signal: AbortSignal.timeout(1_000) }))
        .ok;
    },
    20_000,
    'the operator to start',
  );
  return {
    identity: options.identity,
    metricsPort,
    output,
    exited,
    async kill9() {
      if (code === undefined) child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      if (code !== undefined) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
    async metric(name, labelText = '') {
      for (const line of (await metrics()).split('\n')) {
        if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) {
          if (labelText === '' || line.includes(labelText))
            return Number(line.slice(line.lastIndexOf(' ') + 1));
        }
      }
      return undefined;
    },
  };
}

/** Holder of a Lease (undefined when absent or released). */
export async function leaseHolder(k: KubeClients, name: string): Promise<string | undefined> {
  try {
    const lease = await k.leases.readNamespacedLease({ namespace: 'hyperscale-system', name });
    const holder = lease.spec?.holderIdentity;
    return holder === undefined || holder === '' ? undefined : holder;
  } catch (err) {
    if ((err as { code?: number }).code === 404) return undefined;
    throw err;
  }
}
