import {
  ApiException,
  KubeConfig,
  ServerConfiguration,
  createConfiguration,
  type RequestContext,
  type ResponseContext,
} from '@kubernetes/client-node';

/** An API class of @kubernetes/client-node (CoreV1Api, CustomObjectsApi, ...). */
type ApiClass<T> = new (configuration: ReturnType<typeof createConfiguration>) => T;

/**
 * Like `KubeConfig.makeApiClient`, plus a deadline on every request: each call gets an
 * `AbortSignal.timeout(timeoutMs)`, so no call to the API server runs unbounded (DESIGN §6.7).
 */
export function makeApi<T>(kc: KubeConfig, api: ApiClass<T>, timeoutMs: number): T {
  const cluster = kc.getCurrentCluster();
  if (cluster === null) throw new Error('kubeconfig has no current cluster');
  const configuration = createConfiguration({
    baseServer: new ServerConfiguration(cluster.server, {}),
    authMethods: { default: kc },
    promiseMiddleware: [
      {
        pre: (context: RequestContext) => {
          context.setSignal(AbortSignal.timeout(timeoutMs));
          return Promise.resolve(context);
        },
        post: (context: ResponseContext) => Promise.resolve(context),
      },
    ],
  });
  return new api(configuration);
}

/** HTTP status of a failed API call, or undefined for network errors/timeouts. */
export function statusOf(err: unknown): number | undefined {
  if (err instanceof ApiException) return err.code;
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

export const isNotFound = (err: unknown): boolean => statusOf(err) === 404;
export const isConflict = (err: unknown): boolean => statusOf(err) === 409;

/** Loads `KUBECONFIG` (a path) or, without it, the in-cluster service account. */
export function loadKubeConfig(path: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  if (path === undefined) kc.loadFromCluster();
  else kc.loadFromFile(path);
  return kc;
}
