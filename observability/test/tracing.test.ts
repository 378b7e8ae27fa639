/**
 * Traces from the real services, through the cluster's collector config, into Jaeger:
 * - observability/otel/collector.yaml is valid for a collector build (Jaeger v2 is one) and refused
 *   when it is broken;
 * - that collector, run with this config, forwards to the local stack's Jaeger (hack/stack.sh);
 * - a counter increment is ONE trace: the HTTP server span, the Redis scripts (command and key,
 *   never values or script bodies), the Kafka send; the writer's processing of that event follows
 *   from it (trace context in the Kafka headers) and holds its MySQL transaction;
 * - each reconcile of the CounterShard operator is one trace holding its Kubernetes calls;
 * - no trace starts with a call the process makes on its own (replica-lag queries, migrations,
 *   lease renewals);
 * - a request served while the process shuts down is exported before it exits.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { devTokenSigner } from '../../bench/src/dev-token.js';
import { RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { makeKubeApi, operatorIdentity, operatorKubeconfigPath } from '../../hack/testing/kube.js';
import {
  counterShardBody,
  createCounterShard,
  deleteCounterShard,
  kubeClients,
} from '../../operators/countershard/test/helpers.js';
import { freePort } from '../../hack/testing/ports.js';
import { stack } from '../../hack/testing/stack-control.js';
import { RunTopics, startService, stopProcess, type StartedService } from './service-processes.js';

const run = promisify(execFile);
const repoRoot = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');
const collectorConfig = join(repoRoot, 'observability/otel/collector.yaml');

/** The Jaeger binary hack/install-deps.sh builds (version: JAEGER_VERSION in hack/lib/common.sh). */
function jaegerBinary(): string {
  const common = readFileSync(join(repoRoot, 'hack/lib/common.sh'), 'utf8');
  const version = /^JAEGER_VERSION="([^"]+)"/m.exec(common)?.[1];
  const cache = process.env['HYPERSCALE_CACHE'] ?? join(homedir(), '.cache/hyperscale');
  const binary = join(cache, 'tools', `jaeger-${version}`, 'jaeger');
  if (!existsSync(binary)) throw new Error(`${binary} is missing: run hack/install-deps.sh (make test does)`);
  return binary;
}

async function validate(
  config: string,
  env: Record<string, string>,
): Promise<{ ok: boolean; output: string }> {
  try {
    const { stdout, stderr } = await run(jaegerBinary(), ['validate', '--config', config], {
      timeout: 30_000,
      env: { PATH: process.env['PATH'] ?? '', ...env },
    });
    return { ok: true, output: stdout + stderr };
  } catch (err) {
    const { stdout = '', stderr = '' } = err as { stdout?: string; stderr?: string };
    return { ok: false, output: stdout + stderr };
  }
}

interface JaegerSpan {
  traceID: string;
  spanID: string;
  operationName: string;
  processID: string;
  references?: { refType: 'CHILD_OF' | 'FOLLOWS_FROM'; traceID: string; spanID: string }[];
  tags: { key: string; value: unknown }[];
}
interface JaegerTrace {
  traceID: string;
  spans: JaegerSpan[];
  processes: Record<string, { serviceName: string }>;
}

const tag = (span: JaegerSpan, key: string) => span.tags.find((t) => t.key === key)?.value;
const isRoot = (span: JaegerSpan) => !(span.references ?? []).some((r) => r.refType === 'CHILD_OF');

/** The namespace, and the operator's namespaced role in it (as k8s/operator/rbac.yaml does for `default`). */
async function grantOperator(k: Awaited<ReturnType<typeof kubeClients>>, namespace: string): Promise<void> {
  const exists = (err: unknown) => (err as { code?: number }).code === 409;
  await k.core.createNamespace({ body: { metadata: { name: namespace } } }).catch((err: unknown) => {
    if (!exists(err)) throw err;
  });
  await makeKubeApi(k.kc, RbacAuthorizationV1Api)
    .createNamespacedRoleBinding({
      namespace,
      body: {
        metadata: { name: 'countershard-operator' },
        roleRef: {
          apiGroup: 'rbac.authorization.k8s.io',
          kind: 'ClusterRole',
          name: 'hyperscale:countershard-operator:namespaced',
        },
        subjects: [
          {
            kind: 'ServiceAccount',
            name: operatorIdentity.serviceAccount,
            namespace: operatorIdentity.namespace,
          },
        ],
      },
    })
    .catch((err: unknown) => {
      if (!exists(err)) throw err;
    });
}

async function traces(service: string, operation?: string): Promise<JaegerTrace[]> {
  const query = new URLSearchParams({ service, limit: '1000', lookback: '1h' });
  if (operation !== undefined) query.set('operation', operation);
  const response = await fetch(`${stack.jaeger.query}/api/traces?${query}`, {
    signal: AbortSignal.timeout(5_000),
  });
  if (!response.ok) throw new Error(`Jaeger answered ${response.status}: ${await response.text()}`);
  return ((await response.json()) as { data: JaegerTrace[] | null }).data ?? [];
}

async function eventually<T>(what: string, get: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
  const deadline = Date.now() + 30_000;
  let last = await get();
  while (!done(last)) {
    if (Date.now() > deadline)
      throw new Error(`${what}: not within 30 s (last: ${JSON.stringify(last).slice(0, 500)})`);
    await new Promise((resolve) => setTimeout(resolve, 500));
    last = await get();
  }
  return last;
}

describe('observability/otel/collector.yaml', () => {
  it('is valid for a collector build, and a broken one is refused', async () => {
    const valid = await validate(collectorConfig, { JAEGER_OTLP_ENDPOINT: '127.0.0.1:4317' });
    expect(valid.ok, valid.output).toBe(true);
    const withoutJaeger = await validate(collectorConfig, {});
    expect(withoutJaeger.ok).toBe(false);
    expect(withoutJaeger.output).toContain('requires a non-empty "endpoint"');
    const dir = mkdtempSync(join(tmpdir(), 'hs-otel-'));
    try {
      const broken = join(dir, 'collector.yaml');
      writeFileSync(
        broken,
        readFileSync(collectorConfig, 'utf8').replace('[memory_limiter, batch]', '[memory_limitr, batch]'),
      );
      const refused = await validate(broken, { JAEGER_OTLP_ENDPOINT: '127.0.0.1:4317' });
      expect(refused.ok).toBe(false);
      expect(refused.output).toContain('memory_limitr');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('traces of the services, through the collector, in Jaeger', () => {
  const runId = `trc${Date.now().toString(36)}`;
  const topics = new RunTopics(runId);
  const names = { counter: `${runId}-counter`, writer: `${runId}-writer`, operator: `${runId}-operator` };
  // The operator watches a namespace of these tests only (granted as rbac.yaml grants `default`),
  // so it never reconciles a CounterShard of another operator.
  const counterShard = { namespace: 'hyperscale-tracing-test', name: runId };
  const secret = randomBytes(32).toString('base64url');
  let collector: ChildProcess | undefined;
  let collectorLog = '';
  const services: StartedService[] = [];
  let counter: StartedService;

  beforeAll(async () => {
    await topics.create();

    const ports = { grpc: await freePort(), http: await freePort(), health: await freePort() };
    collector = spawn(jaegerBinary(), ['--config', collectorConfig], {
      env: {
        PATH: process.env['PATH'] ?? '',
        OTLP_GRPC_ENDPOINT: `127.0.0.1:${ports.grpc}`,
        OTLP_HTTP_ENDPOINT: `127.0.0.1:${ports.http}`,
        HEALTH_ENDPOINT: `127.0.0.1:${ports.health}`,
        JAEGER_OTLP_ENDPOINT: stack.jaeger.otlpGrpc,
        JAEGER_OTLP_INSECURE: 'true',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    collector.stdout?.on('data', (chunk: Buffer) => (collectorLog += chunk.toString()));
    collector.stderr?.on('data', (chunk: Buffer) => (collectorLog += chunk.toString()));
    await eventually(
      'the collector is healthy',
      () =>
        fetch(`http://127.0.0.1:${ports.health}/status`, { signal: AbortSignal.timeout(1_000) })
          .then(async (response) => (await response.text()).includes('"healthy":true'))
          .catch(() => false),
      (healthy) => healthy || collector?.exitCode !== null,
    );
    if (collector.exitCode !== null) throw new Error(`the collector exited:\n${collectorLog.slice(-3_000)}`);

    const common = {
      JWT_HS256_SECRET: secret,
      ADMIN_TOKEN: randomBytes(24).toString('base64url'),
      LOG_LEVEL: 'warn',
      SHUTDOWN_DELAY_MS: '0',
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${ports.http}`,
      WRITER_GROUP_ID: `${runId}-writer`,
    };
    const traced = { nodeArgs: ['--import', '@hyperscale/platform/telemetry'] };
    counter = await startService(
      'counter',
      'services/counter',
      {
        ...common,
        SERVICE_NAME: names.counter,
        // Serves on while readiness fails (the last test sends a request then).
        SHUTDOWN_DELAY_MS: '1500',
        COUNTER_TOPIC: topics.counters,
        UNIQUES_TOPIC: topics.uniques,
        SLOTMAP_CONFIGMAP: '', // an even split over REDIS_MASTER_NAMES
        KUBECONFIG: '',
        RATE_LIMIT_PER_USER: '0',
        RATE_LIMIT_PER_IP: '0',
      },
      traced,
    );
    services.push(counter);
    services.push(
      await startService(
        'writer',
        'services/writer',
        {
          ...common,
          SERVICE_NAME: names.writer,
          WRITER_LIKES_TOPIC: topics.likes,
          WRITER_COUNTERS_TOPIC: topics.counters,
          WRITER_UNIQUES_TOPIC: topics.uniques,
        },
        traced,
      ),
    );
    const k = await kubeClients();
    await grantOperator(k, counterShard.namespace);
    await createCounterShard(
      k,
      counterShardBody(
        counterShard.name,
        counterShard.namespace,
        stack.redis.shards
          .slice(0, 2)
          .map((shard) => ({ name: shard.name, masterName: shard.name, weight: 1 })),
        20_000,
      ),
    );
    services.push(
      await startService(
        'countershard-operator',
        'operators/countershard',
        {
          ...common,
          SERVICE_NAME: names.operator,
          KUBECONFIG: operatorKubeconfigPath(),
          WATCH_NAMESPACE: counterShard.namespace,
          POD_NAME: names.operator,
          LEADER_ELECTION_NAME: names.operator,
          LEASE_RETRY_PERIOD_MS: '500',
        },
        traced,
      ),
    );
  }, 120_000);

  afterAll(async () => {
    await Promise.all(services.map((service) => stopProcess(service.child)));
    const k = await kubeClients();
    await deleteCounterShard(k, counterShard.namespace, counterShard.name).catch(() => undefined);
    await k.leases
      .deleteNamespacedLease({ namespace: 'hyperscale-system', name: names.operator })
      .catch(() => undefined);
    if (collector !== undefined) await stopProcess(collector);
    await topics.remove();
  }, 60_000);

  it('follow an increment from the HTTP request through Redis and Kafka into the writer and MySQL', async () => {
    const token = devTokenSigner(secret)('tracer', ['counters:write']);
    const name = `${runId}-views`;
    for (let i = 0; i < 3; i++) {
      const response = await fetch(`http://127.0.0.1:${counter.httpPort}/v1/counters/${name}/increment`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ delta: 5 }),
      });
      expect(response.status, await response.text()).toBe(200);
    }

    const increments = await eventually(
      'three increment traces in Jaeger',
      () => traces(names.counter, 'POST /v1/counters/:name/increment'),
      (found) => found.length >= 3,
    );
    expect(increments).toHaveLength(3);
    const sends = new Map<string, string>(); // send span id → trace id
    for (const found of increments) {
      const services = new Set(Object.values(found.processes).map((p) => p.serviceName));
      expect(services).toEqual(new Set([names.counter]));
      const roots = found.spans.filter(isRoot);
      expect(roots.map((span) => span.operationName)).toEqual(['POST /v1/counters/:name/increment']);
      expect(tag(roots[0] as JaegerSpan, 'span.kind')).toBe('server');
      expect(tag(roots[0] as JaegerSpan, 'http.route')).toBe('/v1/counters/:name/increment');

      const redis = found.spans.filter((span) => tag(span, 'db.system.name') === 'redis');
      expect(redis.length).toBeGreaterThan(0);
      for (const span of redis) {
        const text = String(tag(span, 'db.query.text'));
        // Command, SHA prefix, key count and the first key: no script body, no arguments.
        expect(text).toMatch(/^(evalsha [0-9a-f]{12}|eval <script>) \d+ keys /);
        expect(text).not.toContain('redis.call');
        expect(text).not.toMatch(/ 5( |$)/);
      }
      const send = found.spans.find((span) => span.operationName === `send ${topics.counters}`);
      expect(send, 'a Kafka send span').toBeDefined();
      expect(tag(send as JaegerSpan, 'span.kind')).toBe('producer');
      sends.set((send as JaegerSpan).spanID, found.traceID);
    }

    // The writer's processing of each event follows from the increment that produced it.
    const processed = await eventually(
      'the writer processed the three events',
      () => traces(names.writer),
      (found) =>
        found
          .flatMap((t) => t.spans)
          .filter((span) => span.operationName === `process ${topics.counters}`)
          .filter((span) =>
            (span.references ?? []).some((r) => r.refType === 'FOLLOWS_FROM' && sends.has(r.spanID)),
          ).length >= 3,
    );
    const writerTrace = processed.find((t) =>
      t.spans.some((span) => span.operationName === `process ${topics.counters}`),
    );
    const operations = new Set(writerTrace?.spans.map((span) => span.operationName));
    expect(operations).toContain(`poll ${topics.counters}`);
    // Its MySQL transaction is in the same trace.
    const mysql = writerTrace?.spans.filter((span) => tag(span, 'db.system.name') === 'mysql') ?? [];
    expect(mysql.map((span) => span.operationName)).toEqual(expect.arrayContaining(['START', 'COMMIT']));
  });

  it("show each of the operator's reconciles as one trace with its Kubernetes calls inside", async () => {
    const operation = `reconcile ${counterShard.namespace}/${counterShard.name}`;
    const reconciles = await eventually(
      'a reconcile trace of the operator',
      () => traces(names.operator, operation),
      (found) => found.length > 0,
    );
    const first = reconciles[0] as JaegerTrace;
    const roots = first.spans.filter(isRoot);
    expect(roots.map((span) => span.operationName)).toEqual([operation]);
    expect(tag(roots[0] as JaegerSpan, 'otel.status_code')).not.toBe('ERROR');
    // Reading the CounterShard and publishing the slot map are its children.
    const kubeCalls = first.spans.filter((span) => tag(span, 'http.request.method') !== undefined);
    expect(kubeCalls.length).toBeGreaterThan(0);
    // Lease renewals (every 500 ms here) are not traces of their own.
    const all = await traces(names.operator);
    const otherRoots = all
      .flatMap((t) => t.spans.filter(isRoot))
      .filter((span) => span.operationName !== operation);
    expect(otherRoots.map((span) => span.operationName)).toEqual([]);
  });

  it('start no trace with a call the process makes on its own', async () => {
    // Both processes poll MySQL on their own (replica lag, offsets) all the time; give them a few
    // seconds of it, then every trace must start with a request served or a Kafka poll/process.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    for (const service of [names.counter, names.writer]) {
      const found = await traces(service);
      expect(found.length).toBeGreaterThan(0);
      const roots = found.flatMap((t) => t.spans.filter(isRoot));
      const unexpected = roots.filter(
        (span) => !(tag(span, 'span.kind') === 'server' || tag(span, 'messaging.system') === 'kafka'),
      );
      expect(
        unexpected.map((span) => `${span.operationName} ${String(tag(span, 'db.query.text') ?? '')}`),
      ).toEqual([]);
    }
  });

  it('export the spans of a request served during the graceful shutdown before the process exits', async () => {
    const exited = new Promise<number | null>((resolve) => counter.child.once('exit', resolve));
    counter.child.kill('SIGTERM');
    // Readiness fails now; the server keeps answering for SHUTDOWN_DELAY_MS, then drains.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const token = devTokenSigner(secret)('tracer', ['counters:write']);
    const late = `${runId}-late`;
    const response = await fetch(`http://127.0.0.1:${counter.httpPort}/v1/counters/${late}/increment`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
    });
    expect(response.status, await response.text()).toBe(200);
    expect(await exited, counter.output().slice(-4_000)).toBe(0);
    // Exported by the process itself on its way out: nothing of it runs any more.
    const found = await eventually(
      'the late request in Jaeger',
      async () =>
        (await traces(names.counter, 'POST /v1/counters/:name/increment')).filter((t) =>
          t.spans.some((span) => span.tags.some((entry) => String(entry.value).includes(late))),
        ),
      (matching) => matching.length === 1,
    );
    const operations = found[0]?.spans.map((span) => span.operationName) ?? [];
    expect(operations).toContain(`send ${topics.counters}`);
  });
});
