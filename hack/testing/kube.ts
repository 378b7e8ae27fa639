/**
 * The local kube-apiserver of hack/stack.sh (etcd + kube-apiserver on https://127.0.0.1:6443, the
 * CRDs of k8s/crds applied) from integration tests.
 *
 *   const kc = loadKubeConfig();                              // admin: group system:masters
 *   await requireKubeApiServer(kc);                           // fails saying how to start it
 *   const objects = makeKubeApi(kc, CustomObjectsApi);        // every request with a time limit
 *   const operator = loadKubeConfig(operatorKubeconfigPath()); // the operator's service account:
 *                                                              // exactly the RBAC of k8s/operator/rbac.yaml
 *
 * No kubelet or controller-manager runs: objects are stored, validated, defaulted, authorised and
 * watched, but pods never start, and a deleted namespace stays Terminating (nobody finalises it).
 */
import { existsSync } from 'node:fs';
import { request, type RequestOptions } from 'node:https';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { ApiException, KubeConfig } from '@kubernetes/client-node';
import { makeKubeApi as makePlatformKubeApi, type KubeApiClass } from '@hyperscale/platform/kube';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const stackDir = process.env['HS_STACK_DIR'] ?? join(repoRoot, '.stack');

/** Time limit of one request to the API server unless told otherwise. */
export const KUBE_REQUEST_TIMEOUT_MS = 10_000;

/** Where the local API server listens. */
export const kubeApiServer = { host: '127.0.0.1', port: 6443, url: 'https://127.0.0.1:6443' } as const;

/** The namespace and service account of the operator's identity (hack/lib/common.sh). */
export const operatorIdentity = {
  namespace: 'hyperscale-system',
  serviceAccount: 'countershard-operator',
  user: 'system:serviceaccount:hyperscale-system:countershard-operator',
} as const;

const startHint = 'start it with hack/stack.sh up (or hack/stack.sh start kube-apiserver)';

/** Admin kubeconfig (user hyperscale-admin, group system:masters), written by hack/stack.sh. */
export function kubeconfigPath(): string {
  return join(stackDir, 'kube', 'kubeconfig');
}

/** Kubeconfig of the operator's service account (default namespace hyperscale-system). */
export function operatorKubeconfigPath(): string {
  return join(stackDir, 'kube', 'operator.kubeconfig');
}

/** A KubeConfig loaded from `path` (the admin kubeconfig by default). */
export function loadKubeConfig(path: string = kubeconfigPath()): KubeConfig {
  if (!existsSync(path)) {
    throw new Error(`no kubeconfig at ${path}: the local kube-apiserver was never started; ${startHint}`);
  }
  const kc = new KubeConfig();
  kc.loadFromFile(path);
  return kc;
}

/**
 * An API client of `kc` whose every request is aborted after `timeoutMs` (the platform's
 * makeKubeApi, with the tests' default limit).
 */
export function makeKubeApi<T>(
  kc: KubeConfig,
  apiClass: KubeApiClass<T>,
  timeoutMs: number = KUBE_REQUEST_TIMEOUT_MS,
): T {
  return makePlatformKubeApi(kc, apiClass, timeoutMs);
}

/** GET /readyz as the kubeconfig's user; rejects with the reason (refused, timeout, not ok). */
export async function kubeApiReadyz(kc: KubeConfig, timeoutMs = 3000): Promise<void> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('the kubeconfig has no current cluster');
  const options: RequestOptions = { method: 'GET' };
  await kc.applyToHTTPSOptions(options);
  await new Promise<void>((resolve, reject) => {
    const req = request(
      new URL('/readyz', cluster.server),
      { ...options, signal: AbortSignal.timeout(timeoutMs) },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => {
          if (res.statusCode === 200 && body.trim() === 'ok') resolve();
          else reject(new Error(`/readyz answered ${res.statusCode ?? '?'}: ${body.trim().slice(0, 300)}`));
        });
        res.on('error', reject);
      },
    );
    req.on('error', (err: NodeJS.ErrnoException) => {
      reject(
        new Error(err.name === 'AbortError' ? `no answer within ${timeoutMs} ms` : (err.code ?? err.message)),
      );
    });
    req.end();
  });
}

/**
 * Resolves when the local API server is ready; otherwise rejects with a message saying how to
 * start it (integration tests never skip because a server is missing).
 */
export async function requireKubeApiServer(
  kc: KubeConfig = loadKubeConfig(),
  timeoutMs = 3000,
): Promise<void> {
  try {
    await kubeApiReadyz(kc, timeoutMs);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new Error(
      `kube-apiserver at ${kc.getCurrentCluster()?.server ?? kubeApiServer.url} is not ready (${reason}); ${startHint}`,
    );
  }
}

/** The metav1.Status of a failed API call. */
export interface KubeStatus {
  code: number;
  reason: string;
  message: string;
}

/** The API server's Status of a rejected call, or null when `err` is not an API answer. */
export function kubeStatusOf(err: unknown): KubeStatus | null {
  if (!(err instanceof ApiException)) return null;
  const code = typeof err.code === 'number' ? err.code : Number(err.code);
  const raw: unknown = err.body;
  let parsed: unknown = raw;
  if (typeof raw === 'string') {
    try {
      parsed = JSON.parse(raw);
    } catch {
      parsed = { message: raw };
    }
  }
  const body = (parsed ?? {}) as { reason?: unknown; message?: unknown };
  return {
    code,
    reason: typeof body.reason === 'string' ? body.reason : '',
    message: typeof body.message === 'string' ? body.message : '',
  };
}
