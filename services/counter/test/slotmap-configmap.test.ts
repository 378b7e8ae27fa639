/**
 * The slot map read from the operator's ConfigMap on the REAL local kube-apiserver, and that API
 * server frozen with SIGSTOP (its port stays open, requests hang): every read gives up within its
 * time limit, the pod keeps the map it has, and the next map is taken once the server answers again.
 */
import { randomBytes } from 'node:crypto';
import { CoreV1Api } from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  kubeconfigPath,
  loadKubeConfig,
  makeKubeApi,
  requireKubeApiServer,
} from '../../../hack/testing/kube.js';
import { freezeServer, resumeFrozenServers, resumeServer } from '../../../hack/testing/stack-control.js';
import { configMapLoader } from '../src/slot-map-configmap.js';
import type { SlotMapDocument } from '../src/slot-map.js';
import { SlotMapSource } from '../src/slot-map-source.js';
import { createTestContext, logger, type TestContext } from './helpers.js';

const namespace = 'default';
const name = `slotmap-${randomBytes(4).toString('hex')}`;
const READ_TIMEOUT_MS = 500;
let ctx: TestContext;
let core: CoreV1Api;

const doc = (epoch: number): SlotMapDocument => ({
  epoch,
  ranges: [
    { from: 0, to: 8191, shard: 'shard-0' },
    { from: 8192, to: 16383, shard: 'shard-1' },
  ],
  shards: { 'shard-0': { masterName: 'shard-0' }, 'shard-1': { masterName: 'shard-1' } },
  migrating: [],
  // Acknowledgements of this test's pod go to a key of its own.
  acksKey: `hyperscale:slotmap:acks:${name}`,
});

async function writeMap(epoch: number): Promise<void> {
  const body = { metadata: { name, namespace }, data: { 'slotmap.json': JSON.stringify(doc(epoch)) } };
  if (epoch === 1) await core.createNamespacedConfigMap({ namespace, body });
  else await core.replaceNamespacedConfigMap({ namespace, name, body });
}

async function reloadFailures(registry: Registry): Promise<number> {
  const metric = await registry.getSingleMetric('hyperscale_counter_slotmap_reload_failures_total')?.get();
  return metric?.values[0]?.value ?? 0;
}

beforeAll(async () => {
  const kc = loadKubeConfig();
  await requireKubeApiServer(kc);
  core = makeKubeApi(kc, CoreV1Api);
  ctx = await createTestContext('slotmap-cm');
});
afterAll(async () => {
  await resumeFrozenServers();
  await core?.deleteNamespacedConfigMap({ namespace, name }).catch(() => undefined);
  await Promise.all((ctx?.shards ?? []).map((s) => s.redis.del(doc(0).acksKey ?? '')));
  await ctx?.close();
}, 120_000);

describe('slot map from a ConfigMap while the API server hangs', () => {
  it('gives up each read within its time limit, keeps the last map, and takes the next one after', async () => {
    await writeMap(1);
    const registry = new Registry();
    const source = new SlotMapSource({
      path: configMapLoader({
        configMap: `${namespace}/${name}`,
        kubeconfig: kubeconfigPath(),
        timeoutMs: READ_TIMEOUT_MS,
      }),
      fallback: undefined,
      shards: ctx.shards,
      // Reads happen when the test calls check().
      pollIntervalMs: 3_600_000,
      ackIntervalMs: 3_600_000,
      logger,
      registry,
    });
    try {
      await source.start();
      expect(source.current()?.epoch).toBe(1);
      expect(await reloadFailures(registry)).toBe(0);

      await freezeServer('kube-apiserver');
      for (let read = 0; read < 2; read += 1) {
        const started = Date.now();
        await source.check();
        const elapsed = Date.now() - started;
        // Without a time limit the read would wait for the server as long as it stays frozen.
        expect(elapsed, `read ${read}`).toBeGreaterThanOrEqual(READ_TIMEOUT_MS - 50);
        expect(elapsed, `read ${read}`).toBeLessThan(READ_TIMEOUT_MS + 1_000);
        expect(source.current()?.epoch).toBe(1);
      }
      // Counted once per outage, not once per poll.
      expect(await reloadFailures(registry)).toBe(1);

      await resumeServer('kube-apiserver');
      await writeMap(2);
      await source.check();
      expect(source.current()?.epoch).toBe(2);
    } finally {
      await source.close();
      await resumeServer('kube-apiserver');
    }
  }, 90_000);
});
