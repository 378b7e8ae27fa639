import {
  type KubeConfig,
  ServerConfiguration,
  createConfiguration,
  type RequestContext,
  type ResponseContext,
} from '@kubernetes/client-node';

/** An API class of @kubernetes/client-node (CoreV1Api, CustomObjectsApi, KubernetesObjectApi, ...). */
export type KubeApiClass<T> = new (configuration: ReturnType<typeof createConfiguration>) => T;

/**
 * Like `KubeConfig.makeApiClient`, plus a deadline on every request: each call gets an
 * `AbortSignal.timeout(timeoutMs)` (makeApiClient sets no time limit at all), so no call to the
 * API server runs unbounded. A subpath export (`@hyperscale/platform/kube`): processes that never
 * talk to Kubernetes do not load the client.
 */
export function makeKubeApi<T>(kc: KubeConfig, api: KubeApiClass<T>, timeoutMs: number): T {
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
