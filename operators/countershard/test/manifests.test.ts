/**
 * Every manifest a user applies (k8s/) is accepted by the real API server: a server-side dry run
 * validates each object against the cluster's schemas (apps/v1 Deployment, RBAC, the CRD) and
 * admission, without storing anything. Broken YAML, a wrong field or a wrong type fails here.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  KubernetesObjectApi,
  PatchStrategy,
  loadAllYaml,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { loadKubeConfig, makeKubeApi, requireKubeApiServer } from '../../../hack/testing/kube.js';

const k8sDir = fileURLToPath(new URL('../../../k8s/', import.meta.url));

describe('k8s/ manifests', () => {
  for (const file of ['operator/rbac.yaml', 'operator/deployment.yaml', 'examples/countershard.yaml']) {
    it(`${file} passes a server-side dry run`, async () => {
      const kc = loadKubeConfig();
      await requireKubeApiServer(kc);
      const api = makeKubeApi(kc, KubernetesObjectApi);
      const objects = loadAllYaml(readFileSync(`${k8sDir}${file}`, 'utf8')) as KubernetesObject[];
      expect(objects.length).toBeGreaterThan(0);
      for (const object of objects) {
        const result = await api.patch(
          object,
          undefined,
          'All',
          'manifests-test',
          true,
          PatchStrategy.ServerSideApply,
        );
        expect(result.kind).toBe(object.kind);
        expect(result.metadata?.name).toBe(object.metadata?.name);
      }
    });
  }

  it('the operator Deployment runs as the service account rbac.yaml grants, with the pod name as Lease identity', () => {
    const [deployment] = loadAllYaml(readFileSync(`${k8sDir}operator/deployment.yaml`, 'utf8')) as {
      spec: {
        template: {
          spec: {
            serviceAccountName: string;
            containers: { env: { name: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[] }[];
          };
        };
      };
    }[];
    const pod = deployment?.spec.template.spec;
    expect(pod?.serviceAccountName).toBe('countershard-operator');
    const env = pod?.containers[0]?.env ?? [];
    expect(env.find((e) => e.name === 'POD_NAME')?.valueFrom?.fieldRef?.fieldPath).toBe('metadata.name');
  });
});
