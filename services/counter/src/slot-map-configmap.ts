import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { makeKubeApi } from '@hyperscale/platform/kube';
import type { SlotMapLoader } from './slot-map-source.js';

/** The key of the slot map document in the operator's ConfigMap. */
const SLOTMAP_KEY = 'slotmap.json';

/**
 * Reads the slot map straight from the operator's ConfigMap `<namespace>/<name>` (a GET per poll,
 * bounded by `timeoutMs`; the resourceVersion is the signature, so the document is parsed only
 * when it changed). Faster than a mounted ConfigMap volume, which the kubelet refreshes only every
 * sync period (up to a minute or more), and it works outside a cluster with a kubeconfig. Needs
 * `get` on that ConfigMap (k8s/operator/rbac.yaml has the Role for counter pods).
 */
export function configMapLoader(options: {
  /** `namespace/name`. */
  configMap: string;
  /** Path of a kubeconfig; undefined = the pod's service account. */
  kubeconfig: string | undefined;
  timeoutMs: number;
}): SlotMapLoader {
  const slash = options.configMap.indexOf('/');
  const namespace = options.configMap.slice(0, slash);
  const name = options.configMap.slice(slash + 1);
  const kc = new KubeConfig();
  if (options.kubeconfig === undefined) kc.loadFromCluster();
  else kc.loadFromFile(options.kubeconfig);
  const api = makeKubeApi(kc, CoreV1Api, options.timeoutMs);
  let last: { version: string; data: string | undefined } | undefined;
  return {
    description: `configmap ${options.configMap}`,
    async signature() {
      const cm = await api.readNamespacedConfigMap({ namespace, name });
      last = { version: cm.metadata?.resourceVersion ?? '', data: cm.data?.[SLOTMAP_KEY] };
      return last.version;
    },
    load() {
      if (last?.data === undefined)
        return Promise.reject(new Error(`configmap ${options.configMap} has no ${SLOTMAP_KEY}`));
      return Promise.resolve(JSON.parse(last.data) as unknown);
    },
  };
}
