/**
 * `make bench SCENARIOS=counter-rebalance`: the cost of a live rebalance. Against the local stack
 * (kube-apiserver included) it starts the CounterShard operator, a counter service reading the
 * operator's slot map, and the writer; creates a 2-shard CounterShard; fills Redis with
 * `BENCH_REBALANCE_NAMES` counters; measures increments over them for `BENCH_DURATION_S` (before),
 * then adds shard-2 and keeps the same load until the CounterShard is Stable again (during). The
 * same client (fixed concurrency, keep-alive) drives both windows, so the p99s compare. Verifies
 * after the writer drained that MySQL holds every acknowledged increment and that the service
 * answers MySQL's value. Last line:
 * `RESULT scenario=counter-rebalance keys_moved=… move_keys_per_s=… migration_s=… rps_before=…
 *  rps_during=… p50_before_ms=… p50_during_ms=… p99_before_ms=… p99_during_ms=… errors=… lost=…`.
 */
import { readFile } from 'node:fs/promises';
import {
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  KubernetesObjectApi,
  PatchStrategy,
  loadAllYaml,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { createMysqlPools, type MysqlPool } from '@hyperscale/platform';
import { makeKubeApi } from '@hyperscale/platform/kube';
import { devTokenSigner } from './dev-token.js';
import { waitDrained } from './drain.js';
import { scrapeMetrics, sumSamples } from './metrics-scrape.js';
import { freePort, httpOk, readEnvFile, repoRoot, startProcess, type RunningProcess } from './processes.js';

const NAMES = Number(process.env['BENCH_REBALANCE_NAMES'] ?? 30_000);
const CONCURRENCY = Number(process.env['BENCH_REBALANCE_CONCURRENCY'] ?? 32);
const BEFORE_S = Number(process.env['BENCH_DURATION_S'] ?? 10);
const NAMESPACE = 'default';
/** Time limit of one request to the kube-apiserver. */
const KUBE_TIMEOUT_MS = 10_000;
const CS = { group: 'hyperscale.dev', version: 'v1alpha1', plural: 'countershards' } as const;

interface Sample {
  at: number;
  ms: number;
}

/** Increments random names with `concurrency` keep-alive loops until `stop()`; records every outcome. */
function load(port: number, names: readonly string[], authorization: string, concurrency: number) {
  const samples: Sample[] = [];
  const acked = new Map<string, number>();
  const errors: string[] = [];
  let running = true;
  const loop = async (): Promise<void> => {
    while (running) {
      const name = names[Math.floor(Math.random() * names.length)] ?? '';
      const at = Date.now();
      const t0 = performance.now();
      try {
        const res = await fetch(`http://127.0.0.1:${port}/v1/counters/${name}/increment`, {
          method: 'POST',
          headers: { authorization, 'content-type': 'application/json' },
          body: '{"delta":1}',
          signal: AbortSignal.timeout(15_000),
        });
        await res.arrayBuffer();
        if (res.ok) {
          samples.push({ at, ms: performance.now() - t0 });
          acked.set(name, (acked.get(name) ?? 0) + 1);
        } else errors.push(String(res.status));
      } catch (err) {
        errors.push((err as Error).name);
      }
    }
  };
  const loops = Array.from({ length: concurrency }, loop);
  return {
    samples,
    acked,
    errors,
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
  };
}

function window(samples: readonly Sample[], from: number, to: number) {
  const ms = samples
    .filter((s) => s.at >= from && s.at < to)
    .map((s) => s.ms)
    .sort((a, b) => a - b);
  const q = (p: number) => ms[Math.min(ms.length - 1, Math.floor(p * ms.length))] ?? NaN;
  return { count: ms.length, rps: ms.length / ((to - from) / 1_000), p50: q(0.5), p99: q(0.99) };
}

async function metric(port: number, name: string): Promise<number> {
  return sumSamples(await scrapeMetrics(port), name);
}

/**
 * The operator's permissions (`k8s/operator/rbac.yaml`), applied server-side as a cluster admin
 * would: a fresh stack grants its operator identity nothing until they are.
 */
async function applyOperatorRbac(kc: KubeConfig): Promise<void> {
  const api = makeKubeApi(kc, KubernetesObjectApi, KUBE_TIMEOUT_MS);
  const manifests = loadAllYaml(
    await readFile(`${repoRoot}k8s/operator/rbac.yaml`, 'utf8'),
  ) as KubernetesObject[];
  for (const manifest of manifests) {
    await api.patch(manifest, undefined, undefined, 'hyperscale-bench', true, PatchStrategy.ServerSideApply);
  }
}

/** The scenario name of `make bench SCENARIOS=…`. */
export const REBALANCE = 'counter-rebalance';

export async function runRebalance(): Promise<void> {
  const runId = `r${Date.now().toString(36)}`;
  const devEnv = readEnvFile(`${repoRoot}.stack/dev.env`);
  const counterEnv = readEnvFile(`${repoRoot}services/counter/local.env`);
  const writerEnv = readEnvFile(`${repoRoot}services/writer/local.env`);
  const token = devTokenSigner(devEnv['JWT_HS256_SECRET'] ?? '');
  const authorization = `Bearer ${token(`${runId}-svc`, ['counters:write'])}`;
  const kubeconfig = `${repoRoot}.stack/kube/kubeconfig`;
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  const custom = makeKubeApi(kc, CustomObjectsApi, KUBE_TIMEOUT_MS);
  const core = makeKubeApi(kc, CoreV1Api, KUBE_TIMEOUT_MS);
  const name = `bench-${runId}`;
  const leaseName = `countershard-bench-${runId}`;
  const processes: RunningProcess[] = [];
  const pools = createMysqlPools({
    primaryUrl: writerEnv['MYSQL_PRIMARY_URL'] ?? '',
    connectionLimit: 4,
    connectTimeoutMs: 2_000,
    queryTimeoutMs: 30_000,
  });
  const shard = (n: number) => ({ name: `shard-${n}`, masterName: `shard-${n}`, weight: 1 });
  const sentinels = (counterEnv['REDIS_SENTINELS'] ?? '').split(',').map((hp) => {
    const [host, port] = hp.split(':');
    return { host: host ?? '', port: Number(port) };
  });
  try {
    await applyOperatorRbac(kc);
    const operatorPort = await freePort();
    processes.push(
      await startProcess({
        name: 'rebalance-operator',
        script: `${repoRoot}operators/countershard/dist/main.js`,
        env: {
          KUBECONFIG: `${repoRoot}.stack/kube/operator.kubeconfig`,
          WATCH_NAMESPACE: NAMESPACE,
          POD_NAME: `bench-operator-${runId}`,
          LEADER_ELECTION_NAME: leaseName,
          METRICS_PORT: String(operatorPort),
          MIGRATION_GRACE_MS: '2000',
          ACK_POLL_MS: '200',
          LOG_LEVEL: 'warn',
        },
        ready: () => httpOk(`http://127.0.0.1:${operatorPort}/readyz`),
      }),
    );
    await custom.createNamespacedCustomObject({
      ...CS,
      namespace: NAMESPACE,
      body: {
        apiVersion: 'hyperscale.dev/v1alpha1',
        kind: 'CounterShard',
        metadata: { name, namespace: NAMESPACE },
        spec: {
          shards: [shard(0), shard(1)],
          sentinels,
          migration: { keysPerSecond: 20_000 },
          podAckStaleSeconds: 10,
        },
      },
    });
    const ports = { http: await freePort(), metrics: await freePort() };
    processes.push(
      await startProcess({
        name: 'rebalance-counter',
        script: `${repoRoot}services/counter/dist/main.js`,
        env: {
          ...counterEnv,
          ...devEnv,
          KUBECONFIG: kubeconfig,
          SLOTMAP_CONFIGMAP: `${NAMESPACE}/${name}-slotmap`,
          SLOTMAP_POLL_MS: '200',
          SLOTMAP_ACK_INTERVAL_MS: '1000',
          POD_ID: `bench-counter-${runId}`,
          HTTP_PORT: String(ports.http),
          METRICS_PORT: String(ports.metrics),
          LOG_LEVEL: 'warn',
          RATE_LIMIT_PER_USER: '100000000',
          RATE_LIMIT_PER_IP: '100000000',
        },
        ready: () => httpOk(`http://127.0.0.1:${ports.metrics}/readyz`),
        timeoutMs: 60_000,
      }),
    );
    const writerPort = await freePort();
    processes.push(
      await startProcess({
        name: 'rebalance-writer',
        script: `${repoRoot}services/writer/dist/main.js`,
        env: { ...writerEnv, METRICS_PORT: String(writerPort), LOG_LEVEL: 'warn' },
        ready: () => httpOk(`http://127.0.0.1:${writerPort}/readyz`),
      }),
    );

    const names = Array.from({ length: NAMES }, (_, i) => `${runId}-c${i}`);
    // Fill: every name once, so the move has NAMES counters to carry.
    const fill = load(ports.http, names, authorization, CONCURRENCY);
    const fillStarted = Date.now();
    while ((await metric(ports.metrics, 'hyperscale_counter_writes_total')) < NAMES * 1.5) {
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    const running = load(ports.http, names, authorization, CONCURRENCY);
    await fill.stop();
    process.stdout.write(
      `FILL ${fill.samples.length} increments in ${((Date.now() - fillStarted) / 1000).toFixed(1)} s\n`,
    );

    const beforeStart = Date.now() + 1_000;
    await new Promise((resolve) => setTimeout(resolve, 1_000 + BEFORE_S * 1_000));
    const migrationStart = Date.now();
    const current = (await custom.getNamespacedCustomObject({ ...CS, namespace: NAMESPACE, name })) as {
      spec: Record<string, unknown>;
    };
    await custom.replaceNamespacedCustomObject({
      ...CS,
      namespace: NAMESPACE,
      name,
      body: { ...current, spec: { ...current.spec, shards: [shard(0), shard(1), shard(2)] } },
    });
    let sawRebalancing = false;
    for (;;) {
      const object = (await custom.getNamespacedCustomObject({ ...CS, namespace: NAMESPACE, name })) as {
        metadata: { generation: number };
        status?: { phase?: string; observedGeneration?: number; migratingSlots?: number };
      };
      if (object.status?.phase === 'Rebalancing') sawRebalancing = true;
      const cm = await core.readNamespacedConfigMap({ namespace: NAMESPACE, name: `${name}-slotmap` });
      if (
        sawRebalancing &&
        object.status?.phase === 'Stable' &&
        object.status.observedGeneration === object.metadata.generation &&
        cm.metadata?.annotations?.['hyperscale.dev/cleanup'] === undefined
      )
        break;
      if (Date.now() - migrationStart > 300_000) throw new Error('rebalance did not finish within 300 s');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const migrationEnd = Date.now();
    await running.stop();

    const keysMoved = await metric(operatorPort, 'hyperscale_operator_keys_moved_total');
    const moveRate = await metric(operatorPort, 'hyperscale_operator_last_move_keys_per_second');
    const before = window(running.samples, beforeStart, migrationStart);
    const during = window(running.samples, migrationStart, migrationEnd);
    const acked = new Map<string, number>();
    for (const source of [fill.acked, running.acked])
      for (const [n, c] of source) acked.set(n, (acked.get(n) ?? 0) + c);
    const lost = await verify(pools.primary, ports.http, authorization, acked, writerEnv);
    const errors = fill.errors.length + running.errors.length;
    process.stdout.write(
      `RESULT scenario=counter-rebalance keys_moved=${keysMoved} move_keys_per_s=${Math.round(moveRate)} ` +
        `migration_s=${((migrationEnd - migrationStart) / 1000).toFixed(1)} rps_before=${Math.round(before.rps)} ` +
        `rps_during=${Math.round(during.rps)} p50_before_ms=${before.p50.toFixed(1)} p50_during_ms=${during.p50.toFixed(1)} ` +
        `p99_before_ms=${before.p99.toFixed(1)} p99_during_ms=${during.p99.toFixed(1)} errors=${errors} lost=${lost}\n`,
    );
  } finally {
    for (const p of processes.reverse()) await p.stop();
    await custom.deleteNamespacedCustomObject({ ...CS, namespace: NAMESPACE, name }).catch(() => undefined);
    await core
      .deleteNamespacedConfigMap({ namespace: NAMESPACE, name: `${name}-slotmap` })
      .catch(() => undefined);
    // The operator's lease of this run (in the operator's namespace); a run of its own next time.
    await makeKubeApi(kc, CoordinationV1Api, KUBE_TIMEOUT_MS)
      .deleteNamespacedLease({ namespace: 'hyperscale-system', name: leaseName })
      .catch(() => undefined);
    await pools.close();
  }
}

/** After the writer drained: acknowledged increments missing from MySQL, plus names the API answers wrongly. */
async function verify(
  primary: MysqlPool,
  port: number,
  authorization: string,
  acked: Map<string, number>,
  writerEnv: Record<string, string>,
): Promise<number> {
  await waitDrained(primary, writerEnv, 'counters.deltas.v1');
  const names = [...acked.keys()];
  let lost = 0;
  for (let i = 0; i < names.length; i += 1_000) {
    const chunk = names.slice(i, i + 1_000);
    const rows = await primary.select<{ name: string; value: string }>(
      `SELECT name, value FROM counters WHERE name IN (${chunk.map(() => '?').join(',')})`,
      chunk,
    );
    const stored = new Map(rows.map((r) => [r.name, Number(r.value)]));
    for (const n of chunk) lost += Math.max(0, (acked.get(n) ?? 0) - (stored.get(n) ?? 0));
  }
  // Redis converged: a sample of names read through the service equals MySQL.
  for (const n of names.slice(0, 300)) {
    const res = await fetch(`http://127.0.0.1:${port}/v1/counters/${n}`, { headers: { authorization } });
    const api = ((await res.json()) as { value: number }).value;
    const [row] = await primary.select<{ value: string }>('SELECT value FROM counters WHERE name = ?', [n]);
    if (api !== Number(row?.value ?? 0)) lost += 1;
  }
  return lost;
}
