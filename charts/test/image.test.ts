/**
 * The image every process runs (the root Dockerfile), replayed without a container engine by
 * hack/testing/dockerfile-replay.ts: each stage a folder, this machine's Node 20 and npm standing
 * in for node:20-bookworm-slim. Then:
 * - the tree holds the built processes, their production dependencies only and the migrations, and
 *   no sources, tests, tooling or local settings;
 * - each process runs from that tree with the exact command the chart gives it, with
 *   NODE_ENV=production, against the local stack: like, counter, writer and the operator serve
 *   their metrics, the APIs answer a write, and the migration Job's command exits 0.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { signDevToken } from '@hyperscale/platform';
import { replayDockerfile, type ReplayedImage } from '../../hack/testing/dockerfile-replay.js';
import { helmRun, parseManifest, workload, type K8sObject } from '../../hack/testing/kube-cli.js';
import { operatorIdentity, operatorKubeconfigPath } from '../../hack/testing/kube.js';
import { kubeClients } from '../../operators/countershard/test/helpers.js';
import { stack } from '../../hack/testing/stack-control.js';
import {
  RunTopics,
  startService,
  stopProcess,
  type StartedService,
} from '../../observability/test/service-processes.js';

const run = promisify(execFile);
const { primary, database } = stack.mysql;
const primaryUrl = `mysql://${primary.user}:${primary.password}@${primary.host}:${primary.port}/${database}`;
const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

interface PackageJson {
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}
const packageJson = (dir: string) =>
  JSON.parse(readFileSync(join(repoRoot, dir, 'package.json'), 'utf8')) as PackageJson;
const workspaces = [
  '.',
  'services/platform',
  'services/like',
  'services/counter',
  'services/writer',
  'operators/countershard',
];

describe('the image (root Dockerfile, replayed without a container engine)', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'hyperscale-image-'));
  let image: ReplayedImage;
  let app: string;
  let chart: K8sObject[];
  let productionTree: Set<string>;
  const commandOf = (component: string) =>
    workload(chart, `hyperscale-${component}`).spec.template.spec.containers[0]?.command ?? [];

  beforeAll(async () => {
    image = await replayDockerfile(repoRoot, scratch);
    // npm's own view of the repository: the production dependencies of the image's workspaces.
    const listed = await run(
      'npm',
      ['ls', '--omit=dev', '--all', '--parseable', ...workspaces.slice(1).flatMap((w) => ['-w', w])],
      { cwd: repoRoot, maxBuffer: 16 * 1024 * 1024 },
    ).catch((err: { stdout?: string }) => ({ stdout: err.stdout ?? '' }));
    productionTree = new Set(
      listed.stdout
        .split('\n')
        .filter((path) => path.includes('/node_modules/'))
        .map((path) => path.slice(path.lastIndexOf('/node_modules/') + '/node_modules/'.length)),
    );
    app = join(image.root, image.workdir);
    const rendered = await helmRun([
      'template',
      'hyperscale',
      join(repoRoot, 'charts/hyperscale'),
      '-f',
      join(repoRoot, 'charts/hyperscale/ci/test-values.yaml'),
    ]);
    if (!rendered.ok) throw new Error(rendered.stderr);
    chart = parseManifest(rendered.stdout);
  }, 15 * 60_000);

  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('holds the built processes, production dependencies only and the migrations; no sources, tests or tooling', () => {
    expect(new Set(image.bases)).toEqual(new Set(['node:20-bookworm-slim']));
    expect(image.workdir).toBe('/app');
    expect(image.env).toEqual({ NODE_ENV: 'production' });
    // The user the chart's pods run as.
    const values = parse(readFileSync(join(repoRoot, 'charts/hyperscale/values.yaml'), 'utf8')) as {
      podSecurityContext: { runAsUser: number; runAsGroup: number };
    };
    expect(image.user).toBe(`${values.podSecurityContext.runAsUser}:${values.podSecurityContext.runAsGroup}`);
    // The image's default command is the like service's command in the chart.
    expect(image.cmd).toEqual(commandOf('like'));
    for (const component of ['like', 'counter', 'writer', 'countershard-operator', 'migrate']) {
      const entry = commandOf(component).at(-1) ?? '';
      expect(existsSync(join(app, entry)), `${component}: ${entry}`).toBe(true);
    }
    const migrations = readdirSync(join(app, 'services/platform/migrations'));
    expect(migrations).toEqual(readdirSync(join(repoRoot, 'services/platform/migrations')));
    // Exactly the production dependency tree of the workspaces the image runs: nothing of the
    // development tooling, nothing of the bench's load generator.
    const installed = readdirSync(join(app, 'node_modules')).flatMap((entry) =>
      entry.startsWith('@')
        ? readdirSync(join(app, 'node_modules', entry)).map((scoped) => `${entry}/${scoped}`)
        : entry.startsWith('.')
          ? []
          : [entry],
    );
    expect(installed.length).toBeGreaterThan(50);
    for (const name of installed) expect(productionTree.has(name), name).toBe(true);
    for (const name of workspaces.flatMap((dir) => Object.keys(packageJson(dir).dependencies ?? {})))
      expect(installed, name).toContain(name);
    for (const name of ['typescript', 'vitest', 'eslint', 'prettier', 'autocannon', '@hyperscale/bench'])
      expect(installed, name).not.toContain(name);
    for (const dir of [
      'services/platform',
      'services/like',
      'services/counter',
      'services/writer',
      'operators/countershard',
    ]) {
      for (const gone of ['src', 'test', 'local.env'])
        expect(existsSync(join(app, dir, gone)), `${dir}/${gone}`).toBe(false);
    }
    for (const gone of ['bench', 'charts', 'hack', 'k8s', 'observability', '.git', '.stack'])
      expect(existsSync(join(app, gone)), gone).toBe(false);
  });

  describe('runs every process with the chart command, NODE_ENV=production, against the local stack', () => {
    const runId = `img${Date.now().toString(36)}`;
    const topics = new RunTopics(runId);
    const secret = randomBytes(32).toString('base64url');
    const services: StartedService[] = [];
    const common = {
      NODE_ENV: 'production',
      JWT_HS256_SECRET: secret,
      ADMIN_TOKEN: randomBytes(24).toString('base64url'),
      LOG_LEVEL: 'warn',
      SHUTDOWN_DELAY_MS: '0',
      WRITER_GROUP_ID: `${runId}-writer`,
    };
    const start = (component: string, dir: string, env: Record<string, string>) => {
      const [program, ...args] = commandOf(component);
      expect(program).toBe('node');
      return startService(component, dir, { ...common, ...env }, { command: { args, cwd: app } });
    };

    afterAll(async () => {
      await Promise.all(services.map((service) => stopProcess(service.child)));
      await topics.remove();
      const { leases } = await kubeClients();
      await leases
        .deleteNamespacedLease({ namespace: operatorIdentity.namespace, name: `${runId}-operator` })
        .catch(() => undefined);
    });

    it('the migration command exits 0 on the primary', async () => {
      const [, ...args] = commandOf('migrate');
      const { stdout, stderr } = await run(process.execPath, args, {
        cwd: app,
        env: { PATH: process.env['PATH'] ?? '', NODE_ENV: 'production', MYSQL_PRIMARY_URL: primaryUrl },
        timeout: 60_000,
      });
      expect(stdout + stderr).not.toMatch(/"level":(50|60)/);
    });

    it('like, counter, writer and the operator start and serve; the APIs take a write', async () => {
      await topics.create();
      const like = await start('like', 'services/like', {
        LIKE_TOPIC: topics.likes,
        RATE_LIMIT_PER_USER: '0',
        RATE_LIMIT_PER_IP: '0',
      });
      services.push(like);
      const counter = await start('counter', 'services/counter', {
        COUNTER_TOPIC: topics.counters,
        UNIQUES_TOPIC: topics.uniques,
        SLOTMAP_CONFIGMAP: '', // an even split over REDIS_MASTER_NAMES
        KUBECONFIG: '',
      });
      services.push(counter);
      services.push(
        await start('writer', 'services/writer', {
          WRITER_LIKES_TOPIC: topics.likes,
          WRITER_COUNTERS_TOPIC: topics.counters,
          WRITER_UNIQUES_TOPIC: topics.uniques,
        }),
      );
      // The operator's identity gets the RBAC of k8s/operator/rbac.yaml (kubeClients applies it).
      await kubeClients();
      services.push(
        await start('countershard-operator', 'operators/countershard', {
          KUBECONFIG: operatorKubeconfigPath(),
          // A namespace without CounterShards: the operator starts, leads and has nothing to do.
          WATCH_NAMESPACE: `${runId}-none`,
          POD_NAME: `${runId}-operator`,
          LEADER_ELECTION_NAME: `${runId}-operator`,
        }),
      );
      const token = await signDevToken({ secret, userId: `${runId}-u`, scopes: ['counters:write'] });
      const headers = { authorization: `Bearer ${token}` };
      const increment = await fetch(`http://127.0.0.1:${counter.httpPort}/v1/counters/${runId}-c/increment`, {
        method: 'POST',
        headers,
      });
      expect(increment.status, await increment.clone().text()).toBe(200);
      expect(await increment.json()).toEqual({ name: `${runId}-c`, value: 1 });
      const liked = await fetch(`http://127.0.0.1:${like.httpPort}/v1/posts/${runId}-p/like`, {
        method: 'PUT',
        headers,
      });
      expect(liked.status, await liked.clone().text()).toBe(200);
      for (const service of services) {
        const ready = await fetch(`http://127.0.0.1:${service.metricsPort}/livez`);
        expect(ready.status, service.name).toBe(200);
      }
    }, 180_000);
  });
});
