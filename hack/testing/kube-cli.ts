/**
 * `helm` and `kubectl` (linked in .stack/bin by hack/install-deps.sh) against the local
 * kube-apiserver, for the tests of the chart and of the dev-cluster files:
 *
 *   const objects = parseManifest((await helmRun(['template', ...])).stdout);
 *   const result = await serverDryRun(manifest);          // strict field validation
 *   const env = resolveEnv(objects, container, podName, namespace);
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { kubeconfigPath } from './kube.js';

const run = promisify(execFile);
const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const binDir = join(repoRoot, '.stack/bin');
export const helmPath = join(binDir, 'helm');
export const kubectlPath = join(binDir, 'kubectl');

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: {
    secretKeyRef?: { name: string; key: string; optional?: boolean };
    fieldRef?: { fieldPath: string };
  };
}
export interface Container {
  name: string;
  image: string;
  command?: string[];
  env?: EnvVar[];
  ports?: { name: string; containerPort: number }[];
  readinessProbe?: { httpGet?: { path: string; port: string } };
  livenessProbe?: { httpGet?: { path: string; port: string } };
}
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
}
export type Workload = K8sObject & {
  spec: { template: { spec: { containers: Container[]; serviceAccountName?: string } } };
};
export interface CliResult {
  ok: boolean;
  stdout: string;
  stderr: string;
}

/** Fails with how to get the tool when hack/install-deps.sh has not run. */
export function requireTool(path: string): void {
  if (!existsSync(path)) throw new Error(`${path} is missing: run hack/install-deps.sh (make test does)`);
}

/** Runs a program with the local kube-apiserver's admin kubeconfig; never throws on exit codes. */
export async function runCli(program: string, args: string[], timeoutMs = 60_000): Promise<CliResult> {
  requireTool(program);
  try {
    const { stdout, stderr } = await run(program, args, {
      timeout: timeoutMs,
      maxBuffer: 64 * 1024 * 1024,
      env: { ...process.env, KUBECONFIG: kubeconfigPath() },
    });
    return { ok: true, stdout, stderr };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    return { ok: false, stdout: e.stdout ?? '', stderr: e.stderr ?? String(err) };
  }
}

export const helmRun = (args: string[]) => runCli(helmPath, args);

/** `kubectl` with stdout and stderr together, as a person would read them. */
export async function kubectlRun(args: string[]): Promise<{ ok: boolean; out: string }> {
  const result = await runCli(kubectlPath, args, 30_000);
  return { ok: result.ok, out: result.stdout + result.stderr };
}

/** `kubectl apply --server-side` of `manifest` (stdin) with `extra` flags. */
export async function kubectlApply(manifest: string, extra: string[]): Promise<{ ok: boolean; out: string }> {
  requireTool(kubectlPath);
  const child = execFile(
    kubectlPath,
    ['apply', '--server-side', '--field-manager=hyperscale-test', ...extra, '-f', '-'],
    {
      timeout: 60_000,
      maxBuffer: 16 * 1024 * 1024,
      env: { ...process.env, KUBECONFIG: kubeconfigPath() },
    },
  );
  let out = '';
  child.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stdin?.end(manifest);
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  return { ok: code === 0, out };
}

/**
 * A server-side dry run with strict field validation. A CRD applied just before may need a moment
 * before its kind is served, so "no matches for kind" is retried for up to 10 s.
 */
export async function serverDryRun(manifest: string): Promise<{ ok: boolean; out: string }> {
  const flags = ['--dry-run=server', '--validate=strict'];
  let result = await kubectlApply(manifest, flags);
  for (
    let attempt = 0;
    !result.ok && /no matches for kind|ensure CRDs/.test(result.out) && attempt < 20;
    attempt++
  ) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    result = await kubectlApply(manifest, flags);
  }
  return result;
}

/**
 * The third-party CRDs of charts/test/crds (Strimzi, prometheus-operator: schemas, not
 * workloads) and `namespace`, so that manifests using them can be validated.
 */
export async function installThirdPartyCrds(namespace: string): Promise<void> {
  const crdDir = join(repoRoot, 'charts/test/crds');
  const crds = readdirSync(crdDir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .flatMap((dir) =>
      readdirSync(join(crdDir, dir.name)).map((file) => readFileSync(join(crdDir, dir.name, file), 'utf8')),
    );
  const installed = await kubectlApply(crds.join('\n---\n'), ['--force-conflicts']);
  if (!installed.ok) throw new Error(`installing charts/test/crds failed: ${installed.out}`);
  const ns = await kubectlApply(`apiVersion: v1\nkind: Namespace\nmetadata: { name: ${namespace} }\n`, []);
  if (!ns.ok) throw new Error(`creating namespace ${namespace} failed: ${ns.out}`);
}

/** The objects of a multi-document manifest (empty documents dropped). */
export function parseManifest(text: string): K8sObject[] {
  return parseAllDocuments(text)
    .map((doc) => doc.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
}

export function byKind(objects: K8sObject[], kind: string): K8sObject[] {
  return objects.filter((o) => o.kind === kind);
}

/** The Deployment or Job `name` of a rendered manifest. */
export function workload(objects: K8sObject[], name: string): Workload {
  const found = objects.find(
    (o) => (o.kind === 'Deployment' || o.kind === 'Job') && o.metadata.name === name,
  );
  if (found === undefined) throw new Error(`no Deployment or Job ${name} rendered`);
  return found as Workload;
}

/** The container's environment as the kubelet would give it, Secrets read from the rendered ones. */
export function resolveEnv(
  objects: K8sObject[],
  container: Container,
  podName: string,
  namespace: string,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const variable of container.env ?? []) {
    const ref = variable.valueFrom;
    if (variable.value !== undefined) env[variable.name] = variable.value;
    else if (ref?.fieldRef !== undefined) {
      const field = ref.fieldRef.fieldPath;
      if (field === 'metadata.name') env[variable.name] = podName;
      else if (field === 'metadata.namespace') env[variable.name] = namespace;
      else throw new Error(`unexpected fieldRef ${field}`);
    } else if (ref?.secretKeyRef !== undefined) {
      const { name, key, optional } = ref.secretKeyRef;
      const secret = byKind(objects, 'Secret').find((s) => s.metadata.name === name);
      const encoded = secret?.data?.[key];
      if (encoded !== undefined) env[variable.name] = Buffer.from(encoded, 'base64').toString('utf8');
      else if (optional !== true) throw new Error(`${variable.name}: Secret ${name} has no key ${key}`);
    } else throw new Error(`${variable.name} has neither value nor valueFrom`);
  }
  return env;
}
