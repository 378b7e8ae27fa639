/**
 * The Prometheus rules and the Grafana dashboard against the real things they describe:
 * - `promtool check rules` and `promtool test rules` (every alert fires on its failure and not on
 *   the nearest healthy state: ../prometheus/tests);
 * - every dashboard query parses as PromQL (promtool checks them as recording rules);
 * - every metric a rule or a panel reads is exported by a real service process: like, counter,
 *   writer and the CounterShard operator are started on free ports against the local stack and
 *   their /metrics scraped, so a renamed or removed metric fails here instead of leaving an alert
 *   that can never fire or an empty panel.
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { CoordinationV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import {
  loadKubeConfig,
  makeKubeApi,
  operatorIdentity,
  operatorKubeconfigPath,
} from '../../hack/testing/kube.js';
import { RunTopics, startService as start, stopProcess } from './service-processes.js';

const run = promisify(execFile);
const repoRoot = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');
const observability = join(repoRoot, 'observability');
const rulesFile = join(observability, 'prometheus/rules/hyperscale.rules.yaml');
const rulesTests = join(observability, 'prometheus/tests/hyperscale.rules.test.yaml');
const dashboardFile = join(observability, 'grafana/dashboards/hyperscale.json');
const promtool = join(repoRoot, '.stack/bin/promtool');

interface RuleFile {
  groups: { name: string; rules: { record?: string; alert?: string; expr: string }[] }[];
}
interface Panel {
  id: number;
  type: string;
  title: string;
  targets?: { expr: string; refId: string }[];
}
interface Dashboard {
  uid: string;
  panels: Panel[];
  templating: { list: { name: string }[] };
}

const rules = parse(readFileSync(rulesFile, 'utf8')) as RuleFile;
const dashboard = JSON.parse(readFileSync(dashboardFile, 'utf8')) as Dashboard;

/** Grafana's variables replaced by what they expand to, so the query is plain PromQL. */
function dashboardQueries(): { where: string; expr: string }[] {
  return dashboard.panels.flatMap((panel) =>
    (panel.targets ?? []).map((target) => ({
      where: `panel ${panel.id} "${panel.title}" ${target.refId}`,
      expr: target.expr.replaceAll('$__rate_interval', '5m').replaceAll('$service', '.+'),
    })),
  );
}

/** Names of the metrics an expression reads (recording rules, `level:metric:operation`, are not). */
function metricNames(expr: string): string[] {
  const withoutRecorded = expr.replace(/\b[a-z_]+:[a-z0-9_:]+/g, ' ');
  return [...new Set(withoutRecorded.match(/\bhyperscale_[a-z0-9_]+/g) ?? [])];
}

async function promtoolRun(...args: string[]): Promise<string> {
  if (!existsSync(promtool))
    throw new Error(`${promtool} is missing: run hack/install-deps.sh (make test does) to build it`);
  try {
    const { stdout, stderr } = await run(promtool, args, { timeout: 60_000 });
    return stdout + stderr;
  } catch (err) {
    const { stdout = '', stderr = '' } = err as { stdout?: string; stderr?: string };
    throw new Error(`promtool ${args.join(' ')} failed:\n${stdout}${stderr}`, { cause: err });
  }
}

describe('Prometheus rules', () => {
  it('pass promtool check rules', async () => {
    const count = rules.groups.reduce((sum, group) => sum + group.rules.length, 0);
    expect(count).toBeGreaterThan(20);
    expect(await promtoolRun('check', 'rules', rulesFile)).toContain(`SUCCESS: ${count} rules found`);
  });

  it('pass their unit tests, and every alert is tested', async () => {
    const output = await promtoolRun('test', 'rules', rulesTests);
    expect(output).toContain('SUCCESS');
    const tested = new Set(
      [...readFileSync(rulesTests, 'utf8').matchAll(/alertname: (\w+)/g)].map((match) => match[1]),
    );
    const alerts = rules.groups.flatMap((group) => group.rules.flatMap((rule) => rule.alert ?? []));
    expect(alerts.filter((alert) => !tested.has(alert))).toEqual([]);
  });

  it('catch a broken rule (the check is not a formality)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hs-rules-'));
    try {
      const broken = join(dir, 'broken.yaml');
      writeFileSync(
        broken,
        'groups:\n  - name: broken\n    rules:\n      - alert: Broken\n        expr: sum by (service (rate(x[5m]))\n',
      );
      await expect(promtoolRun('check', 'rules', broken)).rejects.toThrow(/parse error|unclosed/i);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('Grafana dashboard', () => {
  it('has unique panel ids, a datasource variable and a query on every graph', () => {
    const ids = dashboard.panels.map((panel) => panel.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(dashboard.uid).toBe('hyperscale-overview');
    expect(dashboard.templating.list.map((variable) => variable.name)).toEqual(['datasource', 'service']);
    const graphs = dashboard.panels.filter((panel) => panel.type !== 'row');
    expect(graphs.length).toBeGreaterThan(25);
    for (const panel of graphs) expect(panel.targets?.length ?? 0, panel.title).toBeGreaterThan(0);
  });

  it('queries parse as PromQL', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hs-dashboard-'));
    try {
      const file = join(dir, 'dashboard-queries.yaml');
      const queries = dashboardQueries();
      const asRules = queries.map(
        ({ expr }, i) => `      - record: dashboard:query_${i}\n        expr: ${JSON.stringify(expr)}\n`,
      );
      writeFileSync(file, `groups:\n  - name: dashboard\n    rules:\n${asRules.join('')}`);
      expect(await promtoolRun('check', 'rules', file)).toContain(`SUCCESS: ${queries.length} rules found`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('metrics the rules and the dashboard read', () => {
  const children: ChildProcess[] = [];
  const exported = new Map<string, string>();
  /** Metrics with at least one sample right after start (no traffic yet). */
  const sampled = new Set<string>();
  const runId = `obs${Date.now().toString(36)}`;
  const leaseName = `${runId}-operator`;
  const topics = new RunTopics(runId);

  beforeAll(async () => {
    await topics.create();
    // What `.stack/dev.env` gives `make up` (the tests' stack has none): secrets of this run.
    const common = {
      JWT_HS256_SECRET: randomBytes(32).toString('base64url'),
      ADMIN_TOKEN: randomBytes(24).toString('base64url'),
      LOG_LEVEL: 'warn',
      SHUTDOWN_DELAY_MS: '0',
    };
    const started = await Promise.all([
      startService('like', 'services/like', {
        ...common,
        LIKE_TOPIC: topics.likes,
        WRITER_GROUP_ID: `${runId}-writer`,
        RATE_LIMIT_PER_USER: '0',
        RATE_LIMIT_PER_IP: '0',
      }),
      startService('counter', 'services/counter', {
        ...common,
        COUNTER_TOPIC: topics.counters,
        UNIQUES_TOPIC: topics.uniques,
        WRITER_GROUP_ID: `${runId}-writer`,
        // An even split over REDIS_MASTER_NAMES instead of the operator's ConfigMap.
        SLOTMAP_CONFIGMAP: '',
        KUBECONFIG: '',
        RATE_LIMIT_PER_USER: '0',
        RATE_LIMIT_PER_IP: '0',
      }),
      startService('writer', 'services/writer', {
        ...common,
        WRITER_GROUP_ID: `${runId}-writer`,
        WRITER_LIKES_TOPIC: topics.likes,
        WRITER_COUNTERS_TOPIC: topics.counters,
        WRITER_UNIQUES_TOPIC: topics.uniques,
      }),
      // A lease of its own and a namespace without CounterShards: it registers the operator's
      // metrics and reconciles nothing, next to the operator of `make up` if one runs.
      startService('countershard-operator', 'operators/countershard', {
        ...common,
        KUBECONFIG: operatorKubeconfigPath(),
        POD_NAME: `${runId}-operator`,
        LEADER_ELECTION_NAME: leaseName,
        WATCH_NAMESPACE: runId,
      }),
    ]);
    for (const { metricsPort } of started) {
      const body = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      for (const [, name, type] of body.matchAll(/^# TYPE (\S+) (\S+)$/gm))
        exported.set(name as string, type as string);
      for (const [, name] of body.matchAll(/^([a-z_:][a-z0-9_:]*)[{ ]/gm)) sampled.add(name as string);
    }
  }, 120_000);

  afterAll(async () => {
    await Promise.all(children.map(stopProcess));
    await makeKubeApi(loadKubeConfig(), CoordinationV1Api)
      .deleteNamespacedLease({ name: leaseName, namespace: operatorIdentity.namespace })
      .catch(() => undefined); // not created if the operator never started
    await topics.remove();
  }, 40_000);

  async function startService(name: string, dir: string, env: Record<string, string>) {
    const started = await start(name, dir, env);
    children.push(started.child);
    return started;
  }

  it('are each exported by a service (histogram series by a histogram)', () => {
    expect(exported.get('hyperscale_http_requests_total')).toBe('counter');
    expect(exported.get('hyperscale_operator_pods_behind')).toBe('gauge');
    const expressions = [
      ...rules.groups.flatMap((group) =>
        group.rules.map((rule) => ({ where: `rule ${rule.alert ?? rule.record}`, expr: rule.expr })),
      ),
      ...dashboardQueries(),
    ];
    const missing: string[] = [];
    for (const { where, expr } of expressions) {
      for (const name of metricNames(expr)) {
        const histogramPart = /^(.+)_(bucket|sum|count)$/.exec(name);
        const found =
          exported.has(name) ||
          (histogramPart !== null && exported.get(histogramPart[1] as string) === 'histogram');
        if (!found) missing.push(`${where}: ${name}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('have a sample from the start where an alert fires on their absence', () => {
    const absences = rules.groups.flatMap((group) =>
      group.rules.flatMap((rule) => [...rule.expr.matchAll(/absent\((hyperscale_[a-z0-9_]+)\)/g)]),
    );
    expect(absences.length).toBeGreaterThan(0);
    // Otherwise the alert would fire on every idle deployment.
    expect(absences.map((match) => match[1]).filter((name) => !sampled.has(name as string))).toEqual([]);
  });

  it('are found in expressions the way the check above reads them', () => {
    expect(
      metricNames(
        'service_route:hyperscale_http_requests:rate5m > 1 and rate(hyperscale_writer_commits_total[5m]) > 0',
      ),
    ).toEqual(['hyperscale_writer_commits_total']);
  });
});
