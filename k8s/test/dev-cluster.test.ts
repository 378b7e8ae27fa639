/**
 * The dev-cluster files (`kind create cluster --config kind-config.yaml && skaffold dev`), checked
 * without a container runtime:
 * - skaffold.yaml against skaffold's own config schema (hack/install-deps.sh fetches it), with and
 *   without its profile, and against what it points at: charts, values files, the image the chart
 *   runs, values keys the chart has;
 * - kind-config.yaml read by kind's own config types (hack/kind-check), mapping exactly the
 *   NodePorts the dev tools use to host ports the local stack leaves free;
 * - the dev servers chart (k8s/dev/servers) and the platform chart with the dev values, both
 *   accepted by the local kube-apiserver (server-side dry run, strict), every server the platform
 *   is pointed at being a Service of the dev servers with that port and those credentials;
 * - the start scripts of the Redis and Sentinel pods, run with the real redis-server and
 *   redis-sentinel (only the Sentinel's answer is scripted).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Ajv, type ValidateFunction } from 'ajv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import {
  byKind,
  helmRun,
  installThirdPartyCrds,
  parseManifest,
  requireTool,
  resolveEnv,
  serverDryRun,
  workload,
  type K8sObject,
} from '../../hack/testing/kube-cli.js';
import { freePort } from '../../hack/testing/ports.js';
import { loadCounterConfig } from '../../services/counter/src/config.js';

const run = promisify(execFile);
const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const at = (path: string) => join(repoRoot, path);
const namespace = 'hyperscale-dev-test';
const kindCheck = at('.stack/bin/kind-config-check');

interface HelmRelease {
  name: string;
  chartPath?: string;
  remoteChart?: string;
  version?: string;
  namespace?: string;
  valuesFiles?: string[];
  setValues?: Record<string, string>;
  setValueTemplates?: Record<string, string>;
}
interface Patch {
  op: string;
  path: string;
  value?: unknown;
}
interface SkaffoldConfig {
  apiVersion: string;
  metadata: { name: string };
  build?: { artifacts: { image: string; docker?: { dockerfile: string } }[] };
  deploy?: { helm?: { releases: HelmRelease[] } };
  profiles?: { name: string; patches?: Patch[] }[];
}

const skaffoldText = readFileSync(at('skaffold.yaml'), 'utf8');
const skaffoldDocs = (text: string) => parseAllDocuments(text).map((doc) => doc.toJS() as SkaffoldConfig);
const configs = skaffoldDocs(skaffoldText);
const config = (name: string): SkaffoldConfig => {
  const found = configs.find((c) => c.metadata.name === name);
  if (found === undefined) throw new Error(`skaffold.yaml has no config ${name}`);
  return found;
};
const releases = (c: SkaffoldConfig) => c.deploy?.helm?.releases ?? [];
const release = (name: string): HelmRelease => {
  const found = configs.flatMap(releases).find((r) => r.name === name);
  if (found === undefined) throw new Error(`skaffold.yaml has no Helm release ${name}`);
  return found;
};

/** A config with a profile's JSON patches applied (skaffold supports add/replace/remove). */
function withProfile(c: SkaffoldConfig, profile: string): SkaffoldConfig {
  const patched = structuredClone(c) as unknown as Record<string, unknown>;
  for (const patch of c.profiles?.find((p) => p.name === profile)?.patches ?? []) {
    const keys = patch.path.split('/').slice(1);
    const last = keys.pop() ?? '';
    let parent: unknown = patched;
    for (const key of keys) parent = (parent as Record<string, unknown>)[key];
    if (parent === undefined) throw new Error(`${profile}: ${patch.path} has no parent`);
    if (patch.op !== 'add' && patch.op !== 'replace')
      throw new Error(`${profile}: op ${patch.op} unsupported`);
    if (Array.isArray(parent) && last === '-') parent.push(patch.value);
    else (parent as Record<string, unknown>)[last] = patch.value;
  }
  delete patched['profiles'];
  return patched as unknown as SkaffoldConfig;
}

/** Skaffold's image template names: the image with every non-alphanumeric character as `_`. */
const templateKey = (image: string) => image.replace(/[^A-Za-z0-9]/g, '_');

/** Whether a dotted values key (`image.tag`) is a property path of the chart's values schema. */
function schemaHasKey(schema: Record<string, unknown>, dotted: string): boolean {
  let node: Record<string, unknown> | undefined = schema;
  for (const key of dotted.split('.')) {
    const properties = node?.['properties'] as Record<string, Record<string, unknown>> | undefined;
    node = properties?.[key];
    if (node === undefined) return false;
  }
  return true;
}

async function renderChart(chart: string, name: string, args: string[]): Promise<K8sObject[]> {
  const result = await helmRun(['template', name, at(chart), '-n', namespace, ...args]);
  if (!result.ok) throw new Error(`helm template ${chart} failed: ${result.stderr}`);
  return parseManifest(result.stdout);
}

/** The values skaffold passes to the platform chart: its values files, and the templates filled. */
function platformArgs(image: { repo: string; tag: string }, profile?: string): string[] {
  const hyperscale =
    profile === undefined ? config('hyperscale') : withProfile(config('hyperscale'), profile);
  const r = releases(hyperscale).find((x) => x.name === 'hyperscale');
  if (r === undefined) throw new Error('no hyperscale release');
  const key = templateKey(config('hyperscale').build?.artifacts[0]?.image ?? '');
  const fill = (template: string) =>
    template.replace(`{{.IMAGE_REPO_${key}}}`, image.repo).replace(`{{.IMAGE_TAG_${key}}}`, image.tag);
  return [
    ...(r.valuesFiles ?? []).flatMap((file) => ['-f', at(file)]),
    ...Object.entries(r.setValueTemplates ?? {}).flatMap(([k, v]) => ['--set', `${k}=${fill(v)}`]),
    ...Object.entries(r.setValues ?? {}).flatMap(([k, v]) => ['--set', `${k}=${v}`]),
  ];
}

interface ServicePort {
  name: string;
  port: number;
  nodePort?: number;
}
const servicePorts = (objects: K8sObject[], name: string): ServicePort[] => {
  const service = byKind(objects, 'Service').find((s) => s.metadata.name === name);
  return (service?.spec as { ports?: ServicePort[] } | undefined)?.ports ?? [];
};

describe('skaffold.yaml', () => {
  let validate: ValidateFunction;
  beforeAll(() => {
    const version = configs[0]?.apiVersion.replace('skaffold/', '') ?? '';
    const schemaPath = at(`.stack/schemas/skaffold-${version}.json`);
    requireTool(schemaPath);
    const ajv = new Ajv({ strict: false, allErrors: true });
    validate = ajv.compile(JSON.parse(readFileSync(schemaPath, 'utf8')) as object);
  });
  const problems = (c: unknown) =>
    validate(c) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`);

  it("is valid for skaffold's own schema, with and without the monitoring profile", () => {
    expect(configs.map((c) => c.metadata.name)).toEqual(['hyperscale-deps', 'hyperscale']);
    for (const c of configs) {
      expect(problems(c), c.metadata.name).toEqual([]);
      expect(c.profiles?.map((p) => p.name)).toEqual(['monitoring']);
      expect(problems(withProfile(c, 'monitoring')), `${c.metadata.name} -p monitoring`).toEqual([]);
    }
    // The schema is strict: a misspelt key and a wrong type are refused, naming where.
    const misspelt = skaffoldDocs(
      skaffoldText.replace('valuesFiles: [k8s/dev/traefik', 'valuesFile: [k8s/dev/traefik'),
    );
    expect(problems(misspelt[0]).join('\n')).toContain('must NOT have additional properties');
    const wrongType = skaffoldDocs(
      skaffoldText.replace('statusCheckDeadlineSeconds: 900', 'statusCheckDeadlineSeconds: soon'),
    );
    expect(problems(wrongType[1]).join('\n')).toContain('/deploy/statusCheckDeadlineSeconds must be integer');
  });

  it('builds the image the chart runs and passes it through values the chart has', () => {
    const artifacts = config('hyperscale').build?.artifacts ?? [];
    expect(artifacts).toHaveLength(1);
    const chartValues = parse(readFileSync(at('charts/hyperscale/values.yaml'), 'utf8')) as {
      image: { repository: string };
    };
    expect(artifacts[0]?.image).toBe(chartValues.image.repository);
    expect(existsSync(at(artifacts[0]?.docker?.dockerfile ?? 'none'))).toBe(true);
    const schema = JSON.parse(readFileSync(at('charts/hyperscale/values.schema.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    const platform = release('hyperscale');
    const key = templateKey(chartValues.image.repository);
    expect(platform.setValueTemplates).toEqual({
      'image.repository': `{{.IMAGE_REPO_${key}}}`,
      'image.tag': `{{.IMAGE_TAG_${key}}}`,
    });
    const monitoring = releases(withProfile(config('hyperscale'), 'monitoring')).find(
      (r) => r.name === 'hyperscale',
    );
    const keys = [
      ...Object.keys(platform.setValueTemplates ?? {}),
      ...Object.keys(monitoring?.setValues ?? {}),
    ];
    expect(keys.length).toBeGreaterThan(4);
    for (const k of keys) expect(schemaHasKey(schema, k), k).toBe(true);
    expect(schemaHasKey(schema, 'image.digest'), 'the check can fail').toBe(false);
  });

  it('points at charts and values files that exist, and pins every remote chart', () => {
    const all = configs.flatMap((c) => [c, withProfile(c, 'monitoring')]).flatMap(releases);
    for (const r of all) {
      if (r.chartPath !== undefined)
        expect(existsSync(at(join(r.chartPath, 'Chart.yaml'))), r.name).toBe(true);
      else expect(r.version, `${r.name} pins its chart version`).toMatch(/^\d+\.\d+\.\d+$/);
      for (const file of r.valuesFiles ?? []) expect(existsSync(at(file)), file).toBe(true);
    }
    // The Strimzi CRDs the platform chart's Kafka objects need come from the release deployed first.
    expect(release('strimzi').version).toBe(
      readFileSync(at('charts/test/crds/README.md'), 'utf8').match(/strimzi-(\d+\.\d+\.\d+)\//)?.[1],
    );
  });
});

describe('kind-config.yaml', () => {
  it("is a kind cluster by kind's own types, mapping the dev tools' NodePorts to free host ports", async () => {
    requireTool(kindCheck);
    const { stdout } = await run(kindCheck, [at('kind-config.yaml')], { timeout: 30_000 });
    const cluster = JSON.parse(stdout) as {
      nodes: {
        role: string;
        extraPortMappings?: { containerPort: number; hostPort: number; listenAddress: string }[];
      }[];
    };
    expect(cluster.nodes.map((n) => n.role)).toEqual(['control-plane']);
    const mappings = cluster.nodes.flatMap((n) => n.extraPortMappings ?? []);
    // Exactly the NodePorts the dev tools declare: Traefik's web port, Jaeger's UI, Grafana.
    const traefik = parse(readFileSync(at('k8s/dev/traefik-values.yaml'), 'utf8')) as {
      ports: { web: { nodePort: number } };
    };
    const monitoring = parse(readFileSync(at('k8s/dev/monitoring-values.yaml'), 'utf8')) as {
      grafana: { service: { nodePort: number } };
    };
    const servers = await renderChart('k8s/dev/servers', 'dev-servers', []);
    const jaegerUi = servicePorts(servers, 'jaeger').find((p) => p.name === 'ui')?.nodePort;
    expect(mappings.map((m) => m.containerPort).sort()).toEqual(
      [traefik.ports.web.nodePort, jaegerUi, monitoring.grafana.service.nodePort].sort(),
    );
    for (const m of mappings) expect(m.listenAddress).toBe('127.0.0.1');
    // Host ports the local stack (make up) does not use, so both can run.
    const localPorts = [
      readFileSync(at('hack/lib/common.sh'), 'utf8'),
      ...['like', 'counter', 'writer'].map((s) => readFileSync(at(`services/${s}/local.env`), 'utf8')),
      readFileSync(at('operators/countershard/local.env'), 'utf8'),
    ]
      .flatMap((text) => text.split('\n'))
      .filter((line) => /^[A-Z_]*PORTS?=/.test(line))
      .flatMap((line) => [...line.matchAll(/\b\d{2,5}\b/g)].map((m) => Number(m[0])));
    expect(localPorts).toEqual(expect.arrayContaining([6379, 3306, 9092, 8080, 8081, 16686]));
    for (const m of mappings) expect(localPorts, `host port ${m.hostPort}`).not.toContain(m.hostPort);
  });

  it("is refused by kind's types when a field is misspelt", async () => {
    requireTool(kindCheck);
    const dir = mkdtempSync(join(tmpdir(), 'kind-config-'));
    try {
      const file = join(dir, 'kind-config.yaml');
      writeFileSync(
        file,
        readFileSync(at('kind-config.yaml'), 'utf8').replace('extraPortMappings', 'extraPortMapping'),
      );
      const result = await run(kindCheck, [file], { timeout: 30_000 }).then(
        () => ({ ok: true, stderr: '' }),
        (err: { stderr?: string }) => ({ ok: false, stderr: err.stderr ?? '' }),
      );
      expect(result.ok).toBe(false);
      expect(result.stderr).toContain('unknown field "extraPortMapping"');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('k8s/dev: the dev servers and the platform chart with the dev values', () => {
  let servers: K8sObject[];
  let platform: K8sObject[];
  const image = { repo: 'ghcr.io/hyperscale/hyperscale', tag: 'dev-3f2a1b' };
  beforeAll(async () => {
    servers = await renderChart('k8s/dev/servers', 'dev-servers', []);
    platform = await renderChart('charts/hyperscale', 'hyperscale', platformArgs(image));
  });

  it('lints, and both are accepted by the kube-apiserver (server-side dry run, strict)', async () => {
    const lint = await helmRun(['lint', '--strict', at('k8s/dev/servers')]);
    expect(lint.ok, lint.stdout + lint.stderr).toBe(true);
    await installThirdPartyCrds(namespace);
    for (const [chart, args] of [
      ['k8s/dev/servers', []],
      ['charts/hyperscale', platformArgs(image)],
      ['charts/hyperscale', platformArgs(image, 'monitoring')],
    ] as const) {
      const rendered = await helmRun(['template', 'dev', at(chart), '-n', namespace, ...args]);
      expect(rendered.ok, rendered.stderr).toBe(true);
      const result = await serverDryRun(rendered.stdout);
      expect(result.ok, `${chart}: ${result.out}`).toBe(true);
    }
    const kinds = servers.map((o) => `${o.kind}/${o.metadata.name}`);
    for (const expected of [
      'StatefulSet/redis-shard-0',
      'StatefulSet/redis-shard-1',
      'StatefulSet/redis-sentinel',
      'StatefulSet/mysql-primary',
      'StatefulSet/mysql-replica',
      'Deployment/jaeger',
    ])
      expect(kinds).toContain(expected);
    expect(workload(platform, 'hyperscale-like').spec.template.spec.containers[0]?.image).toBe(
      `${image.repo}:${image.tag}`,
    );
  });

  it('points the platform at the dev servers: every host a Service with that port, the same credentials', () => {
    const env = resolveEnv(
      platform,
      workload(platform, 'hyperscale-counter').spec.template.spec.containers[0] ?? { name: '', image: '' },
      'hyperscale-counter-abc12',
      namespace,
    );
    const servesPort = (host: string, port: number) =>
      servicePorts(servers, host).some((p) => p.port === port);
    const devValues = parse(readFileSync(at('k8s/dev/servers/values.yaml'), 'utf8')) as {
      redis: { shardGroups: string[] };
      mariadb: { database: string; user: string; password: string };
    };
    for (const variable of ['MYSQL_PRIMARY_URL', 'MYSQL_REPLICA_URL']) {
      const url = new URL(env[variable] ?? '');
      expect(servesPort(url.hostname, Number(url.port)), `${variable} ${url.host}`).toBe(true);
      expect([url.username, url.password, url.pathname]).toEqual([
        devValues.mariadb.user,
        devValues.mariadb.password,
        `/${devValues.mariadb.database}`,
      ]);
    }
    const counter = loadCounterConfig(env);
    const sentinels = counter.REDIS_SENTINELS ?? [];
    expect(sentinels.length).toBeGreaterThan(0);
    for (const s of sentinels) expect(servesPort(s.host, s.port), `sentinel ${s.host}`).toBe(true);
    expect(counter.REDIS_MASTER_NAMES).toEqual(devValues.redis.shardGroups);
    const otlp = new URL(env['OTEL_EXPORTER_OTLP_ENDPOINT'] ?? '');
    expect(servicePorts(servers, otlp.hostname).find((p) => p.port === Number(otlp.port))?.name).toBe(
      'otlp-http',
    );
    // Kafka: the bootstrap Service Strimzi makes for the chart's cluster, its plain listener.
    const kafka = byKind(platform, 'Kafka')[0] as unknown as {
      metadata: { name: string };
      spec: { kafka: { listeners: { name: string; port: number; tls: boolean }[] } };
    };
    const plain = kafka.spec.kafka.listeners.find((l) => !l.tls);
    expect(env['KAFKA_BROKERS']).toBe(`${kafka.metadata.name}-kafka-bootstrap:${plain?.port}`);
    // One broker: topics can only have one replica.
    for (const topic of byKind(platform, 'KafkaTopic')) expect(topic.spec?.['replicas']).toBe(1);
    // The Ingress is served by the Traefik release (its ingress class is named after it).
    const ingress = byKind(platform, 'Ingress')[0];
    expect(ingress?.spec?.['ingressClassName']).toBe(release('traefik').name);
  });
});

describe('k8s/dev/servers start scripts, with the real redis-server and redis-sentinel', () => {
  const children: ChildProcess[] = [];
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'dev-scripts-'));
  });
  afterAll(() => {
    for (const child of children) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  /**
   * A folder of programs put first on PATH: `redis-cli` answers the Sentinel query with `answer`
   * (empty: no Sentinel reachable), `getent` resolves every name; the servers are the real ones on
   * `port`, in a scratch folder, or with `printConfig` the Sentinel only
   * prints the config file it was given.
   */
  function stubs(answer: string, port: number, printConfig = false): string {
    const bin = mkdtempSync(join(dir, 'bin-'));
    const stub = (program: string, body: string) => {
      writeFileSync(join(bin, program), `#!/bin/sh\n${body}\n`);
      chmodSync(join(bin, program), 0o755);
    };
    stub('redis-cli', answer === '' ? 'exit 1' : `printf '%s\\n6379\\n' '${answer}'`);
    stub('getent', 'exit 0');
    // The script's own --port and --dir (6379, /data) are dropped, the rest passed on as given.
    stub(
      'redis-server',
      [
        'skip=0',
        'for a in "$@"; do shift',
        '  if [ "$skip" = 1 ]; then skip=0; continue; fi',
        '  case "$a" in --port|--dir) skip=1; continue ;; esac',
        '  set -- "$@" "$a"',
        'done',
        `exec /usr/bin/redis-server "$@" --port ${port} --dir ${bin}`,
      ].join('\n'),
    );
    stub('redis-sentinel', printConfig ? 'cat "$1"' : `exec /usr/bin/redis-sentinel "$@" --port ${port}`);
    return bin;
  }
  const scriptEnv = (bin: string, env: Record<string, string>) => ({
    PATH: `${bin}:${process.env['PATH'] ?? ''}`,
    SENTINEL_CONF: join(bin, 'sentinel.conf'),
    ...env,
  });

  /** Starts a script's server and waits until it answers PING. */
  async function start(script: string, env: Record<string, string>, answer: string): Promise<number> {
    const port = await freePort();
    const child = spawn('sh', [at(`k8s/dev/servers/files/${script}`)], {
      env: scriptEnv(stubs(answer, port), env),
      stdio: 'ignore',
    });
    children.push(child);
    for (let i = 0; i < 100; i++) {
      const ping = await run('/usr/bin/redis-cli', ['-p', String(port), 'ping'], { timeout: 2_000 }).catch(
        () => null,
      );
      if (ping?.stdout.trim() === 'PONG') return port;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`${script} did not start a server on ${port}`);
  }
  const cli = async (port: number, ...args: string[]) =>
    (await run('/usr/bin/redis-cli', ['-p', String(port), ...args], { timeout: 5_000 })).stdout.trim();
  const redisEnv = (hostname: string) => ({
    HOSTNAME: hostname,
    MASTER_NAME: 'shard-0',
    SENTINEL_HOST: 'redis-sentinel',
    SENTINEL_PORT: '26379',
  });
  const role = async (port: number) => {
    const info = await cli(port, 'info', 'replication');
    return {
      role: /role:(\w+)/.exec(info)?.[1],
      master: /master_host:(\S+)/.exec(info)?.[1],
      announce: (await cli(port, 'config', 'get', 'replica-announce-ip')).split('\n')[1],
    };
  };

  it('a first start: pod 0 is the master, pod 1 its replica, both announcing their DNS names', async () => {
    expect(await role(await start('redis.sh', redisEnv('redis-shard-0-0'), ''))).toEqual({
      role: 'master',
      master: undefined,
      announce: 'redis-shard-0-0.redis-shard-0',
    });
    expect(await role(await start('redis.sh', redisEnv('redis-shard-0-1'), ''))).toEqual({
      role: 'slave',
      master: 'redis-shard-0-0.redis-shard-0',
      announce: 'redis-shard-0-1.redis-shard-0',
    });
  });

  it('after a failover to pod 1: pod 1 restarts as the master, pod 0 as its replica', async () => {
    const promoted = 'redis-shard-0-1.redis-shard-0';
    expect((await role(await start('redis.sh', redisEnv('redis-shard-0-1'), promoted))).role).toBe('master');
    expect(await role(await start('redis.sh', redisEnv('redis-shard-0-0'), promoted))).toMatchObject({
      role: 'slave',
      master: promoted,
    });
  });

  it("a Sentinel monitors every group at the master the others name, else at the group's pod 0", async () => {
    // The answer must resolve for a real Sentinel to start: 127.0.0.1 stands for "the master the
    // running Sentinels name"; group names unknown to the local stack's Sentinels.
    const sentinelEnv = (hostname: string, groups: string) => ({
      HOSTNAME: hostname,
      SHARD_GROUPS: groups,
      SENTINEL_SERVICE: 'redis-sentinel',
      SENTINEL_HEADLESS: 'redis-sentinel-headless',
      QUORUM: '2',
      DOWN_AFTER_MS: '5000',
      FAILOVER_TIMEOUT_MS: '60000',
    });
    const port = await start(
      'sentinel.sh',
      sentinelEnv('redis-sentinel-1', 'devcheck-0 devcheck-1'),
      '127.0.0.1',
    );
    for (const group of ['devcheck-0', 'devcheck-1']) {
      expect(await cli(port, 'sentinel', 'get-master-addr-by-name', group)).toBe('127.0.0.1\n6379');
      const master = (await cli(port, 'sentinel', 'master', group)).split('\n');
      expect(master[master.indexOf('quorum') + 1]).toBe('2');
      expect(master[master.indexOf('down-after-milliseconds') + 1]).toBe('5000');
    }
    expect(await cli(port, 'sentinel', 'config', 'get', 'announce-hostnames')).toBe(
      'announce-hostnames\nyes',
    );
    expect(await cli(port, 'sentinel', 'config', 'get', 'announce-ip')).toBe(
      'announce-ip\nredis-sentinel-1.redis-sentinel-headless',
    );
    // No Sentinel answers (the first start): each group's pod 0.
    const bin = stubs('', 0, true);
    const { stdout: written } = await run('sh', [at('k8s/dev/servers/files/sentinel.sh')], {
      env: scriptEnv(bin, sentinelEnv('redis-sentinel-0', 'shard-0 shard-1')),
      timeout: 10_000,
    });
    expect(written).toContain('sentinel monitor shard-0 redis-shard-0-0.redis-shard-0 6379 2');
    expect(written).toContain('sentinel monitor shard-1 redis-shard-1-0.redis-shard-1 6379 2');
  });
});
