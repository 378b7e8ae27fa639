/**
 * The Helm chart (charts/hyperscale), rendered by the real `helm` and checked against what it
 * deploys:
 * - `helm lint --strict`, and values.schema.json rejecting bad values with the key named;
 * - every rendered object accepted by the local kube-apiserver in a server-side dry run with strict
 *   field validation (the Strimzi and prometheus-operator CRDs of charts/test/crds installed first);
 * - every container's environment accepted by the service's own config loader, with no variable
 *   the service does not know (a misspelt name would otherwise be ignored silently);
 * - the Ingress routing every public route of each service's OpenAPI document to that service, and
 *   nothing else (docs, admin, metrics);
 * - the PrometheusRule and the dashboard ConfigMap carrying observability/ unchanged.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { Registry } from 'prom-client';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import {
  ConfigError,
  TokenVerifier,
  createLogger,
  kafkaEnv,
  mysqlEnv,
  processEnv,
} from '@hyperscale/platform';
import {
  byKind,
  helmRun,
  installThirdPartyCrds,
  kubectlRun,
  parseManifest,
  resolveEnv as resolveEnvIn,
  serverDryRun,
  workload,
  type Container,
  type K8sObject,
} from '../../hack/testing/kube-cli.js';
import { buildApp as buildCounterApp, type CounterAppDeps } from '../../services/counter/src/app.js';
import { counterEnv, loadCounterConfig } from '../../services/counter/src/config.js';
import { appSettings as counterSettings } from '../../services/counter/src/settings.js';
import { buildApp as buildLikeApp, type LikeAppDeps } from '../../services/like/src/app.js';
import { likeEnv, loadLikeConfig } from '../../services/like/src/config.js';
import { appSettings as likeSettings } from '../../services/like/src/settings.js';
import { loadWriterConfig, writerEnv } from '../../services/writer/src/config.js';
import { loadOperatorConfig, operatorEnv } from '../../operators/countershard/src/config.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const chartDir = join(repoRoot, 'charts/hyperscale');
const testValues = join(chartDir, 'ci/test-values.yaml');
// The values of `skaffold dev` on kind (k8s/test/dev-cluster.test.ts checks the rest of them).
const devValues = join(repoRoot, 'k8s/dev/values.yaml');
const namespace = 'hyperscale-chart-test';
const release = 'hs';

/** `helm template` of the chart with `args` (values files, --set); throws with helm's message. */
async function renderText(args: string[] = ['-f', testValues]): Promise<string> {
  const result = await helmRun(['template', release, chartDir, '-n', namespace, ...args]);
  if (!result.ok) throw new Error(`helm template failed: ${result.stderr}`);
  return result.stdout;
}

async function render(args?: string[]): Promise<K8sObject[]> {
  return parseManifest(await renderText(args));
}

const resolveEnv = (objects: K8sObject[], container: Container, podName: string) =>
  resolveEnvIn(objects, container, podName, namespace);

const name = (component: string) => `${release}-hyperscale-${component}`;

/** Each service: its Deployment, what it reads from the environment, and its loader. */
const services = [
  { component: 'like', known: likeEnv, load: loadLikeConfig },
  { component: 'counter', known: counterEnv, load: loadCounterConfig },
  {
    component: 'writer',
    known: { ...processEnv, ...mysqlEnv, ...kafkaEnv, ...writerEnv },
    load: loadWriterConfig,
  },
  { component: 'countershard-operator', known: operatorEnv, load: loadOperatorConfig },
] as const;

describe('charts/hyperscale', () => {
  let objects: K8sObject[];
  let devObjects: K8sObject[];
  beforeAll(async () => {
    objects = await render();
    devObjects = await render(['-f', devValues]);
  });

  it('passes helm lint --strict', async () => {
    const result = await helmRun(['lint', chartDir, '--strict', '-f', testValues]);
    expect(result.stderr + result.stdout).toContain('0 chart(s) failed');
    expect(result.ok).toBe(true);
  });

  it('refuses to render without a MySQL primary, saying which value to set', async () => {
    const result = await helmRun(['template', release, chartDir]);
    expect(result.ok).toBe(false);
    expect(result.stderr).toContain('mysql.primaryUrl is required');
  });

  it('rejects bad values by their key (values.schema.json)', async () => {
    const cases: [string, string][] = [
      ['like.replicas=0', '/like/replicas'],
      ['auth.jwtHs256Secret=too-short', '/auth/jwtHs256Secret'],
      ['redis.masterNames[0]=Shard_0', '/redis/masterNames/0'],
      ['mysql.replicaUrl=postgres://x', '/mysql/replicaUrl'],
      [
        'counter.autoscaling.targetCPUUtilizationPercentage=150',
        '/counter/autoscaling/targetCPUUtilizationPercentage',
      ],
      ['writer.terminationGracePeriodSeconds=5', '/writer/terminationGracePeriodSeconds'],
      ['telemetry.samplingRatio=1.5', '/telemetry/samplingRatio'],
      ['counetr.enabled=false', "additional properties 'counetr' not allowed"],
      ['like.env.bad-name=1', "'bad-name' does not match pattern"],
    ];
    for (const [set, message] of cases) {
      const result = await helmRun(['template', release, chartDir, '-f', testValues, '--set', set]);
      expect(result.ok, set).toBe(false);
      expect(result.stderr, set).toContain(message);
    }
  });

  it('renders every object a cluster needs', () => {
    const kinds = objects.map((o) => `${o.kind}/${o.metadata.name}`);
    for (const component of ['like', 'counter', 'writer', 'countershard-operator', 'otel-collector']) {
      expect(kinds).toContain(`Deployment/${name(component)}`);
      expect(kinds).toContain(`Service/${name(component)}`);
    }
    for (const expected of [
      `HorizontalPodAutoscaler/${name('like')}`,
      `HorizontalPodAutoscaler/${name('counter')}`,
      `Job/${name('migrate')}`,
      `Secret/${name('secrets')}`,
      'CounterShard/counters',
      `Ingress/${release}-hyperscale`,
      `PrometheusRule/${release}-hyperscale`,
      `ConfigMap/${name('dashboard')}`,
      'Kafka/hyperscale',
      'KafkaNodePool/hyperscale-dual',
    ])
      expect(kinds).toContain(expected);
    const topics = byKind(objects, 'KafkaTopic').map((t) => (t.spec as { topicName: string }).topicName);
    expect(topics.sort()).toEqual(
      ['counters.deltas.v1', 'likes.events.v1', 'uniques.events.v1'].flatMap((t) => [t, `${t}.dlq`]).sort(),
    );
    expect(byKind(objects, 'ServiceMonitor')).toHaveLength(4);
  });

  it('is accepted by the kube-apiserver: server-side dry run, strict field validation', async () => {
    await installThirdPartyCrds(namespace);
    const manifest = await renderText();
    const result = await serverDryRun(manifest);
    expect(result.ok, result.out).toBe(true);
    const applied = result.out.split('\n').filter((line) => line.includes('(server dry run)'));
    expect(applied).toHaveLength(objects.length);

    // The validation is live: a misspelt field is refused.
    const broken = manifest.replace('terminationGracePeriodSeconds: 30', 'terminationGracePeriodSecond: 30');
    expect(broken).not.toBe(manifest);
    const refused = await serverDryRun(broken);
    expect(refused.ok).toBe(false);
    expect(refused.out).toContain('terminationGracePeriodSecond');
  });

  it('installs and upgrades for real, keeping generated secrets, with the RBAC the operator is tested under and no more', async () => {
    await installThirdPartyCrds(namespace);
    await helmRun(['uninstall', release, '-n', namespace, '--no-hooks', '--ignore-not-found']);
    // The release as the test values make it; hooks off (no kubelet runs the migration Job here).
    const helmRelease = (command: 'install' | 'upgrade', ...extra: string[]) =>
      helmRun([command, release, chartDir, '-n', namespace, '-f', testValues, '--no-hooks', ...extra]);
    const install = await helmRelease('install');
    expect(install.ok, install.stderr).toBe(true);
    try {
      const generated = async () => {
        const got = await kubectlRun([
          'get',
          'secret',
          name('secrets'),
          '-n',
          namespace,
          '-o',
          'jsonpath={.data.JWT_HS256_SECRET} {.data.ADMIN_TOKEN}',
        ]);
        expect(got.ok, got.out).toBe(true);
        return got.out;
      };
      const before = await generated();
      expect(before).toMatch(/^[A-Za-z0-9+/=]{40,} [A-Za-z0-9+/=]{20,}$/);
      const upgrade = await helmRelease('upgrade', '--set', 'writer.replicas=3');
      expect(upgrade.ok, upgrade.stderr).toBe(true);
      expect(await generated()).toBe(before);

      const canI = async (account: string, verb: string, resource: string, ns = namespace) => {
        const [plain, subresource] = resource.split('/');
        const args = [
          'auth',
          'can-i',
          verb,
          plain ?? resource,
          '-n',
          ns,
          `--as=system:serviceaccount:${namespace}:${account}`,
        ];
        if (subresource !== undefined) args.push(`--subresource=${subresource}`);
        return (await kubectlRun(args)).out.trim().split('\n')[0];
      };
      // Everything k8s/operator/rbac.yaml grants (the operator's integration tests run under it).
      const operatorSa = name('countershard-operator');
      const rbac = parseAllDocuments(readFileSync(join(repoRoot, 'k8s/operator/rbac.yaml'), 'utf8')).map(
        (doc) =>
          doc.toJS() as {
            kind: string;
            rules?: { apiGroups: string[]; resources: string[]; verbs: string[] }[];
          },
      );
      const grants = rbac.flatMap((o) => o.rules ?? []);
      expect(grants.length).toBeGreaterThan(4);
      for (const rule of grants)
        for (const group of rule.apiGroups)
          for (const resource of rule.resources)
            for (const verb of rule.verbs) {
              const [plain, sub] = resource.split('/');
              const qualified = `${group === '' ? plain : `${plain}.${group}`}${sub === undefined ? '' : `/${sub}`}`;
              expect(await canI(operatorSa, verb, qualified), `${verb} ${qualified}`).toBe('yes');
            }
      // ... and nothing more: no Secrets, no deletes, no other namespace.
      expect(await canI(operatorSa, 'get', 'secrets')).toBe('no');
      expect(await canI(operatorSa, 'delete', 'configmaps')).toBe('no');
      expect(await canI(operatorSa, 'list', 'countershards.hyperscale.dev', 'default')).toBe('no');
      // A counter pod reads its slot map and nothing else.
      const counterSa = name('counter');
      expect(await canI(counterSa, 'get', 'configmaps')).toBe('no');
      expect(await canI(counterSa, 'list', 'configmaps')).toBe('no');
      expect(await canI(counterSa, 'get', 'secrets')).toBe('no');
      const named = async (configMap: string) =>
        (
          await kubectlRun([
            'auth',
            'can-i',
            'get',
            `configmap/${configMap}`,
            '-n',
            namespace,
            `--as=system:serviceaccount:${namespace}:${counterSa}`,
          ])
        ).out.trim();
      expect(await named('counters-slotmap')).toBe('yes');
      expect(await named('another-config')).toBe('no');
    } finally {
      const removed = await helmRun(['uninstall', release, '-n', namespace, '--no-hooks']);
      expect(removed.ok, removed.stderr).toBe(true);
    }
  });

  describe.each(services)('$component container environment', ({ component, known, load }) => {
    it.each(['ci/test-values.yaml', 'k8s/dev/values.yaml'])(
      'with %s: accepted by the service config loader, naming only variables the service reads',
      (values) => {
        const rendered = values === 'ci/test-values.yaml' ? objects : devObjects;
        const container = workload(rendered, name(component)).spec.template.spec.containers[0];
        if (container === undefined) throw new Error('no container');
        const env = resolveEnv(rendered, container, `${name(component)}-abc12`);
        const unknown = Object.keys(env).filter((variable) => !(variable in known));
        expect(unknown).toEqual([]);
        const config = load(env);
        expect(config.SERVICE_NAME).toBe(component);
        // The metrics port the config reads is the container's `metrics` port, which the probes use.
        const metrics = container.ports?.find((p) => p.name === 'metrics');
        expect(config.METRICS_PORT).toBe(metrics?.containerPort);
        expect(container.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 'metrics' });
        expect(container.livenessProbe?.httpGet).toEqual({ path: '/livez', port: 'metrics' });
        expect(container.image).toBe(`ghcr.io/hyperscale/hyperscale:0.1.0`);
        // The entry point exists in the built workspace the image is made of.
        const entry = container.command?.at(-1) ?? '';
        expect(existsSync(join(repoRoot, entry)), entry).toBe(true);
      },
    );
  });

  it('wires the services to each other: HTTP ports, slot map, Secrets and groups', () => {
    const env = (component: string) => {
      const container = workload(objects, name(component)).spec.template.spec.containers[0];
      if (container === undefined) throw new Error('no container');
      return resolveEnv(objects, container, `${name(component)}-abc12`);
    };
    const like = loadLikeConfig(env('like'));
    const counter = loadCounterConfig(env('counter'));
    const writer = loadWriterConfig(env('writer'));
    // Same secret for both APIs, so one token works on both.
    expect(like.JWT_HS256_SECRET).toBeDefined();
    expect(counter.JWT_HS256_SECRET).toBe(like.JWT_HS256_SECRET);
    // The writer barrier of both services waits for the group the writer runs as.
    expect(like.WRITER_GROUP_ID).toBe(writer.WRITER_GROUP_ID);
    expect(counter.WRITER_GROUP_ID).toBe(writer.WRITER_GROUP_ID);
    // The counter follows the slot map of the CounterShard the chart creates, which it may read.
    expect(counter.SLOTMAP_CONFIGMAP).toBe(`${namespace}/counters-slotmap`);
    const role = byKind(objects, 'Role').find((r) => r.metadata.name === name('counter')) as unknown as {
      rules: { resources: string[]; resourceNames: string[]; verbs: string[] }[];
    };
    expect(role.rules).toEqual([
      { apiGroups: [''], resources: ['configmaps'], resourceNames: ['counters-slotmap'], verbs: ['get'] },
    ]);
    const shard = byKind(objects, 'CounterShard')[0] as unknown as {
      spec: { shards: { masterName: string }[]; sentinels: { host: string; port: number }[] };
    };
    expect(shard.spec.shards.map((s) => s.masterName)).toEqual(counter.REDIS_MASTER_NAMES);
    expect(shard.spec.sentinels).toEqual(counter.REDIS_SENTINELS);
    // Each Service's http port reaches the container port the service listens on.
    for (const [component, port] of [
      ['like', like.HTTP_PORT],
      ['counter', counter.HTTP_PORT],
    ] as const) {
      const container = workload(objects, name(component)).spec.template.spec.containers[0];
      expect(container?.ports?.find((p) => p.name === 'http')?.containerPort).toBe(port);
    }
    // The migration Job reads the primary the services write to.
    const job = workload(objects, name('migrate'));
    const jobEnv = resolveEnv(objects, job.spec.template.spec.containers[0] as Container, 'migrate');
    expect(jobEnv['MYSQL_PRIMARY_URL']).toBe(like.MYSQL_PRIMARY_URL);
    expect(existsSync(join(repoRoot, job.spec.template.spec.containers[0]?.command?.at(-1) ?? ''))).toBe(
      true,
    );
  });

  it('fails the service loader when a value the chart passes is wrong (the check above can fail)', async () => {
    const bad = await render(['-f', testValues, '--set', 'like.env.RATE_LIMIT_SYNC_MS=soon']);
    const container = workload(bad, name('like')).spec.template.spec.containers[0] as Container;
    expect(() => loadLikeConfig(resolveEnv(bad, container, 'like-abc12'))).toThrow(ConfigError);
    expect(() => loadLikeConfig(resolveEnv(bad, container, 'like-abc12'))).toThrow(/RATE_LIMIT_SYNC_MS/);
  });

  it('keeps generated secrets out of values and takes a Secret of yours instead', async () => {
    const own = await render(['-f', testValues, '--set', 'secrets.existingSecret=my-secrets']);
    expect(byKind(own, 'Secret').map((s) => s.metadata.name)).toEqual([]);
    const container = workload(own, name('counter')).spec.template.spec.containers[0] as Container;
    const refs = (container.env ?? []).flatMap((e) =>
      e.valueFrom?.secretKeyRef ? [e.valueFrom.secretKeyRef.name] : [],
    );
    expect(new Set(refs)).toEqual(new Set(['my-secrets']));
    // Generated: long random values, present for both the JWT secret and the admin token.
    const secret = byKind(objects, 'Secret').find((s) => s.metadata.name === name('secrets'));
    const decoded = (key: string) => Buffer.from(secret?.data?.[key] ?? '', 'base64').toString();
    expect(decoded('JWT_HS256_SECRET')).toMatch(/^[A-Za-z0-9]{48}$/);
    expect(decoded('ADMIN_TOKEN')).toMatch(/^[A-Za-z0-9]{32}$/);
  });

  it('without the monitoring and Strimzi options renders no object of their CRDs', async () => {
    const plain = await render([
      '--set',
      'mysql.primaryUrl=mysql://u:p@db:3306/hyperscale',
      '--set',
      'kafka.strimzi.topics.create=false',
    ]);
    const foreign = plain.filter((o) => /monitoring\.coreos\.com|kafka\.strimzi\.io/.test(o.apiVersion));
    expect(foreign).toEqual([]);
    expect(byKind(plain, 'Ingress')).toEqual([]);
    const like = workload(plain, name('like')).spec.template.spec.containers[0] as Container;
    expect(like.env?.find((e) => e.name === 'KAFKA_BROKERS')?.value).toBe('hyperscale-kafka-bootstrap:9092');
  });

  it('carries the observability rules and dashboard unchanged', () => {
    const rule = byKind(objects, 'PrometheusRule')[0];
    const rules = parse(
      readFileSync(join(repoRoot, 'observability/prometheus/rules/hyperscale.rules.yaml'), 'utf8'),
    );
    expect(rule?.spec).toEqual(rules);
    const dashboard = byKind(objects, 'ConfigMap').find((c) => c.metadata.name === name('dashboard'));
    expect(dashboard?.metadata.labels?.['grafana_dashboard']).toBe('1');
    expect(JSON.parse(dashboard?.data?.['hyperscale.json'] ?? '')).toEqual(
      JSON.parse(readFileSync(join(repoRoot, 'observability/grafana/dashboards/hyperscale.json'), 'utf8')),
    );
    // The rules group by the app's `service` label: the scrape must keep it.
    for (const monitor of byKind(objects, 'ServiceMonitor')) {
      const endpoints = (monitor.spec as { endpoints: { port: string; honorLabels: boolean }[] }).endpoints;
      expect(endpoints).toEqual([expect.objectContaining({ port: 'metrics', honorLabels: true })]);
    }
  });

  it("runs the collector with observability/otel/collector.yaml and sends every service's traces to it", () => {
    const file = readFileSync(join(repoRoot, 'observability/otel/collector.yaml'), 'utf8');
    const config = byKind(objects, 'ConfigMap').find((c) => c.metadata.name === name('otel-collector'));
    expect(config?.data?.['collector.yaml']).toBe(file.trimEnd());
    // The ports the config listens on by default are the ones the pod and the Service expose.
    const defaultPort = (variable: string) =>
      Number(new RegExp(`\\$\\{env:${variable}:-[^:]+:(\\d+)\\}`).exec(file)?.[1]);
    const collector = workload(objects, name('otel-collector')).spec.template.spec.containers[0] as Container;
    const containerPort = (port: string) => collector.ports?.find((p) => p.name === port)?.containerPort;
    expect(containerPort('otlp-http')).toBe(defaultPort('OTLP_HTTP_ENDPOINT'));
    expect(containerPort('otlp-grpc')).toBe(defaultPort('OTLP_GRPC_ENDPOINT'));
    expect(containerPort('health')).toBe(defaultPort('HEALTH_ENDPOINT'));
    expect(collector.readinessProbe?.httpGet).toEqual({ path: '/status', port: 'health' });
    const env = resolveEnv(objects, collector, 'collector');
    expect(env['JAEGER_OTLP_ENDPOINT']).toBe('jaeger-collector.observability:4317');
    const service = byKind(objects, 'Service').find(
      (c) => c.metadata.name === name('otel-collector'),
    ) as unknown as {
      spec: { ports: { name: string; port: number }[] };
    };
    const httpPort = service.spec.ports.find((p) => p.name === 'otlp-http')?.port;
    for (const component of ['like', 'counter', 'writer', 'countershard-operator']) {
      const container = workload(objects, name(component)).spec.template.spec.containers[0] as Container;
      expect(resolveEnv(objects, container, 'x')['OTEL_EXPORTER_OTLP_ENDPOINT'], component).toBe(
        `http://${name('otel-collector')}:${httpPort}`,
      );
    }
  });

  it('routes every public route of each OpenAPI document to its service through the Ingress, and nothing else', async () => {
    const ingress = byKind(objects, 'Ingress')[0] as unknown as {
      spec: { rules: { http: { paths: IngressPath[] } }[] };
    };
    const paths = ingress.spec.rules.flatMap((r) => r.http.paths);
    const env = (component: string) =>
      resolveEnv(
        objects,
        workload(objects, name(component)).spec.template.spec.containers[0] as Container,
        'x',
      );
    const apps: [string, FastifyInstance][] = [
      ['like', await likeApp(env('like'))],
      ['counter', await counterApp(env('counter'))],
    ];
    try {
      for (const [component, app] of apps) {
        const document = app.swagger() as { paths: Record<string, unknown> };
        const routes = Object.keys(document.paths);
        expect(routes.length).toBeGreaterThan(3);
        for (const route of routes) {
          const concrete = route.replace(/\{[^}]+\}/g, 'x1');
          const target = routeIngress(paths, concrete);
          if (concrete.startsWith('/v1/') || concrete.startsWith('/api/'))
            expect(target, route).toBe(name(component));
          else expect(target, route).toBeUndefined();
        }
      }
      for (const internal of ['/metrics', '/livez', '/readyz', '/docs', '/openapi.json'])
        expect(routeIngress(paths, internal), internal).toBeUndefined();
    } finally {
      await Promise.all(apps.map(([, app]) => app.close()));
    }
  });
});

interface IngressPath {
  path: string;
  pathType: 'Exact' | 'Prefix';
  backend: { service: { name: string } };
}

/** The Service an Ingress sends `path` to (Kubernetes semantics: longest match, Exact before Prefix). */
function routeIngress(paths: IngressPath[], path: string): string | undefined {
  const segments = (p: string) => p.split('/').filter((s) => s !== '');
  const matches = paths.filter((rule) => {
    if (rule.pathType === 'Exact') return rule.path === path;
    const prefix = segments(rule.path);
    const actual = segments(path);
    return prefix.every((segment, i) => actual[i] === segment);
  });
  matches.sort((a, b) => b.path.length - a.path.length || (a.pathType === 'Exact' ? -1 : 1));
  return matches[0]?.backend.service.name;
}

const quiet = () => createLogger({ service: 'chart-test', level: 'silent' });

/** The like app as the chart configures it; its store is never called (only the routes are read). */
async function likeApp(env: Record<string, string>): Promise<FastifyInstance> {
  const config = loadLikeConfig(env);
  const app = await buildLikeApp({
    settings: likeSettings(config),
    logger: quiet(),
    registry: new Registry(),
    shards: [],
    router: {} as LikeAppDeps['router'],
    producer: { send: async () => ({}) } as unknown as LikeAppDeps['producer'],
    highWatermarks: async () => [],
    verifier: new TokenVerifier({ hs256Secret: config.JWT_HS256_SECRET }),
    store: { close: () => undefined } as unknown as NonNullable<LikeAppDeps['store']>,
  });
  await app.ready();
  return app;
}

async function counterApp(env: Record<string, string>): Promise<FastifyInstance> {
  const config = loadCounterConfig(env);
  const app = await buildCounterApp({
    settings: counterSettings(config),
    logger: quiet(),
    registry: new Registry(),
    shards: [],
    slotMaps: { current: () => undefined },
    router: {} as CounterAppDeps['router'],
    producer: { send: async () => ({}) } as unknown as CounterAppDeps['producer'],
    highWatermarks: async () => [],
    verifier: new TokenVerifier({ hs256Secret: config.JWT_HS256_SECRET }),
    store: { close: () => undefined, ready: () => true } as unknown as NonNullable<CounterAppDeps['store']>,
  });
  await app.ready();
  return app;
}
