/**
 * The operator end to end (DESIGN §3, §6.5): a real kube-apiserver, the real Redis shard groups of
 * the local stack, real counter processes reading the slot map from the operator's ConfigMap, the
 * real writer, and the real operator process as its least-privilege service account.
 */
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kubeconfigPath } from '../../../hack/testing/kube.js';
import { createTestContext, type Child, type TestContext } from '../../../services/counter/test/helpers.js';
import { slotOf } from '../../../services/counter/src/keys.js';
import {
  counterShardBody,
  createCounterShard,
  deleteCounterShard,
  getCounterShard,
  kubeClients,
  leaseHolder,
  setShards,
  slotMapOf,
  slotsPerShard,
  startOperator,
  waitFor,
  sleep,
  type KubeClients,
  type OperatorProcess,
  type ShardSpec,
} from './helpers.js';
import { countIn, quantile, startLoad, type Load } from './load.js';

const namespace = 'default';
const shard = (n: number, weight = 1): ShardSpec => ({
  name: `shard-${n}`,
  masterName: `shard-${n}`,
  weight,
});

describe('CounterShard operator: rebalancing live counter traffic', () => {
  let k: KubeClients;
  let ctx: TestContext;
  let operator: OperatorProcess;
  const standbys: OperatorProcess[] = [];
  const retired: OperatorProcess[] = [];
  const counters: Child[] = [];
  let csName: string;
  let leaseName: string;
  let names: string[];
  let acksKey = '';
  let load: Load | undefined;
  const ackedTotal = new Map<string, number>();

  const counterEnv = () => ({
    SLOTMAP_PATH: '',
    SLOTMAP_CONFIGMAP: `${namespace}/${csName}-slotmap`,
    KUBECONFIG: kubeconfigPath(),
    SLOTMAP_POLL_MS: '200',
    SLOTMAP_ACK_INTERVAL_MS: '500',
  });

  /** Waits for phase Stable for the CounterShard's current generation, with no clean-up pending. */
  async function waitStable(timeoutMs: number) {
    return waitFor(
      async () => {
        const object = await getCounterShard(k, namespace, csName);
        const map = await slotMapOf(k, namespace, csName);
        const ready = object.status?.conditions?.find((c) => c.type === 'Ready');
        if (map === undefined) return undefined;
        return object.status?.phase === 'Stable' &&
          object.status.observedGeneration === object.metadata.generation &&
          ready?.status === 'True' &&
          map?.configMap.metadata?.annotations?.['hyperscale.dev/cleanup'] === undefined &&
          map.document.migrating.length === 0
          ? { object, map }
          : undefined;
      },
      timeoutMs,
      'the CounterShard to be Stable',
      250,
    );
  }

  async function runLoad(): Promise<Load> {
    const { authorization } = await ctx.auth();
    load = startLoad({
      ports: () => counters.map((c) => c.httpPort ?? 0),
      names,
      clients: 12,
      authorization,
    });
    return load;
  }

  async function stopLoad(): Promise<void> {
    if (load === undefined) return;
    await load.stop();
    expect(load.stats.failures.slice(0, 5)).toEqual([]);
    for (const [name, n] of load.stats.acked) ackedTotal.set(name, (ackedTotal.get(name) ?? 0) + n);
    load = undefined;
  }

  /** After the writer drained: MySQL and the API equal the acknowledged increments, name by name. */
  async function expectExactTotals(): Promise<void> {
    await ctx.waitDrained(90_000);
    const { authorization } = await ctx.auth();
    const mismatches: string[] = [];
    const port = counters[0]?.httpPort ?? 0;
    for (const name of names) {
      const expected = ackedTotal.get(name) ?? 0;
      const mysql = await ctx.mysqlValue(name);
      const res = await fetch(`http://127.0.0.1:${port}/v1/counters/${encodeURIComponent(name)}`, {
        headers: { authorization },
        signal: AbortSignal.timeout(10_000),
      });
      const api = ((await res.json()) as { value: number }).value;
      if (mysql !== expected || api !== expected)
        mismatches.push(`${name}: acked ${expected} mysql ${mysql} api ${api}`);
    }
    expect(mismatches.slice(0, 10)).toEqual([]);
    expect([...ackedTotal.values()].reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
  }

  /** Every counter hash of this run lives on its owner under `ranges`, nowhere else. */
  async function expectKeysOnOwners(ranges: { from: number; to: number; shard: string }[]): Promise<void> {
    const owner = (slot: number) => ranges.find((r) => slot >= r.from && slot <= r.to)?.shard;
    const strays: string[] = [];
    for (const s of ctx.shards) {
      let cursor = '0';
      do {
        const [next, keys] = await s.redis.scan(cursor, 'MATCH', `ctr:{*}:${ctx.name('')}*`, 'COUNT', 1000);
        cursor = next;
        for (const key of keys) {
          const slot = Number(/^ctr:\{(\d+)\}/.exec(key)?.[1]);
          if (owner(slot) !== s.shard) strays.push(`${key} on ${s.shard}, owner ${owner(slot)}`);
        }
      } while (cursor !== '0');
    }
    expect(strays.slice(0, 10)).toEqual([]);
  }

  beforeAll(async () => {
    k = await kubeClients();
    ctx = await createTestContext('operator');
    csName = `counters-${ctx.runId}`;
    leaseName = `countershard-operator-${ctx.runId}`;
    names = Array.from({ length: 400 }, (_, i) => ctx.name(`c${i}`));
    await ctx.startWriter();
    operator = await startOperator({ identity: `op-a-${ctx.runId}`, namespace, leaseName });
  }, 180_000);

  afterAll(async () => {
    await load?.stop();
    await Promise.all([operator, ...standbys].map((o) => o?.stop()));
    // The operators' logs, for a failed run: one JSON line per event.
    await writeFile(
      join(tmpdir(), `hs-operator-test-${ctx?.runId ?? 'none'}.log`),
      [...retired, operator, ...standbys].map((o) => o?.output.join('') ?? '').join('\n'),
    ).catch(() => undefined);
    if (k !== undefined && csName !== undefined) await deleteCounterShard(k, namespace, csName);
    // The run's lease, released but not deleted by the operators (one per run otherwise).
    if (k !== undefined && leaseName !== undefined)
      await k.leases
        .deleteNamespacedLease({ namespace: 'hyperscale-system', name: leaseName })
        .catch(() => undefined);
    if (acksKey !== '') await Promise.all(ctx.shards.map((s) => s.redis.del(acksKey)));
    await ctx?.close();
  }, 120_000);

  it('publishes the slot map of a 2-shard CounterShard, owned by it, and reports Stable', async () => {
    await createCounterShard(k, counterShardBody(csName, namespace, [shard(0), shard(1)], 20_000));
    const { object, map } = await waitStable(30_000);
    expect(map.document.epoch).toBe(1);
    expect(slotsPerShard(map.document.ranges)).toEqual({ 'shard-0': 8192, 'shard-1': 8192 });
    expect(map.configMap.metadata?.ownerReferences?.[0]).toMatchObject({
      kind: 'CounterShard',
      name: csName,
      controller: true,
    });
    expect(object.status?.shards).toEqual([
      { name: 'shard-0', slots: 8192, reachable: true },
      { name: 'shard-1', slots: 8192, reachable: true },
    ]);
    expect(object.status?.epoch).toBe(1);
    const conditions = Object.fromEntries((object.status?.conditions ?? []).map((c) => [c.type, c]));
    expect(conditions['Ready']).toMatchObject({
      status: 'True',
      observedGeneration: object.metadata.generation,
    });
    expect(conditions['Rebalancing']).toMatchObject({ status: 'False' });
    expect(conditions['ShardsReachable']).toMatchObject({ status: 'True' });
    acksKey = map.document.acksKey;

    counters.push(await ctx.startCounter(counterEnv()), await ctx.startCounter(counterEnv()));
    await waitFor(
      async () =>
        Object.values(await ctx.shard('shard-0').redis.hgetall(acksKey)).filter((v) => v.startsWith('1:'))
          .length >= 2,
      10_000,
      'both counter pods to acknowledge epoch 1',
    );
  }, 90_000);

  it('adds a third shard under load: a pod that cannot apply the map holds it, then a third of the slots move, totals exact', async () => {
    const before = await slotMapOf(k, namespace, csName);
    const laggard = await ctx.startCounter({ ...counterEnv(), REDIS_MASTER_NAMES: 'shard-0,shard-1' });
    const laggardPod = await waitFor(
      async () => {
        const acks = await ctx.shard('shard-0').redis.hgetall(acksKey);
        return Object.keys(acks).find((pod) => !counters.some((_, i) => pod.endsWith(`counter-${i}`)));
      },
      10_000,
      'the third pod to acknowledge',
    );
    const running = await runLoad();
    await sleep(4_000);
    const migrationStart = Date.now();
    const generation = await setShards(k, namespace, csName, [shard(0), shard(1), shard(2)]);

    // The pod without a connection to shard-2 rejects the map; the operator waits for it, by name.
    const held = await waitFor(
      async () => {
        const object = await getCounterShard(k, namespace, csName);
        const rebalancing = object.status?.conditions?.find((c) => c.type === 'Rebalancing');
        return rebalancing?.status === 'True' &&
          rebalancing.reason === 'WaitingForAcks' &&
          rebalancing.message.includes(laggardPod)
          ? object
          : undefined;
      },
      30_000,
      'the migration to be held by the pod that cannot apply it',
    );
    expect(held.status?.phase).toBe('Rebalancing');
    const migrating = await slotMapOf(k, namespace, csName);
    expect(migrating?.document.epoch).toBe(2);
    expect(migrating?.document.migrating.every((m) => m.toShard === 'shard-2')).toBe(true);
    expect(migrating?.document.migrating.reduce((n, m) => n + m.to - m.from + 1, 0)).toBe(5461);
    // Each source shard's clock when the migration started (the mover distrusts hashes filled later).
    const started = JSON.parse(
      migrating?.configMap.metadata?.annotations?.['hyperscale.dev/migration-started'] ?? '{}',
    ) as Record<string, number>;
    const sources = new Set(migrating?.document.migrating.map((m) => m.fromShard));
    expect(Object.keys(started).sort()).toEqual([...sources].sort());
    for (const ms of Object.values(started))
      expect(Math.abs(ms - (migrationStart - 5_000))).toBeLessThan(10_000);
    await sleep(1_500);
    expect((await slotMapOf(k, namespace, csName))?.document.epoch).toBe(2); // still held
    await laggard.kill9(); // its acknowledgement goes stale: no longer a live pod

    const { object, map } = await waitStable(120_000);
    const migrationEnd = Date.now();
    await sleep(2_000);
    const stats = running.stats;
    await stopLoad();
    expect(object.metadata.generation).toBe(generation);
    expect(map.document.epoch).toBe(3);
    expect(slotsPerShard(map.document.ranges)).toEqual({ 'shard-0': 5462, 'shard-1': 5461, 'shard-2': 5461 });
    expect(Object.keys(map.document.shards).sort()).toEqual(['shard-0', 'shard-1', 'shard-2']);
    // Fewest moves: exactly the new shard's share changed owner, all of it to shard-2.
    const ownerBefore = (slot: number) =>
      before?.document.ranges.find((r) => slot >= r.from && slot <= r.to)?.shard;
    const ownerAfter = (slot: number) =>
      map.document.ranges.find((r) => slot >= r.from && slot <= r.to)?.shard;
    let moved = 0;
    for (let slot = 0; slot < 16_384; slot += 1) {
      if (ownerBefore(slot) !== ownerAfter(slot)) {
        moved += 1;
        expect(ownerAfter(slot)).toBe('shard-2');
      }
    }
    expect(moved).toBe(5461);
    await expectExactTotals();
    await expectKeysOnOwners(map.document.ranges);
    const movedNames = names.filter((n) => ownerAfter(slotOf(n)) === 'shard-2');
    expect(movedNames.length).toBeGreaterThan(50);

    const rate = await operator.metric('hyperscale_operator_last_move_keys_per_second');
    const p99Before = quantile(stats.latencies, 0.99, 0, migrationStart);
    const p99During = quantile(stats.latencies, 0.99, migrationStart, migrationEnd);
    console.info(
      `[operator] add shard: ${moved} slots moved, ${movedNames.length} of ${names.length} names; ` +
        `move ${rate?.toFixed(0)} keys/s; counter p99 before ${p99Before.toFixed(1)} ms ` +
        `(${countIn(stats.latencies, 0, migrationStart)} req), during ${p99During.toFixed(1)} ms ` +
        `(${countIn(stats.latencies, migrationStart, migrationEnd)} req, ${((migrationEnd - migrationStart) / 1000).toFixed(1)} s)`,
    );
  }, 240_000);

  it('finishes a migration after the operator is killed with -9 mid-move, totals exact', async () => {
    await runLoad();
    await sleep(1_000);
    const moved = async () =>
      (await operator.metric('hyperscale_operator_keys_moved_total', 'kind="counter"')) ?? 0;
    const movedBefore = await moved();
    // Slow moves (10 keys/s) so the kill lands in the middle of the data move.
    await setShards(k, namespace, csName, [shard(0, 2), shard(1), shard(2)], 10);
    await waitFor(async () => (await moved()) >= movedBefore + 3, 60_000, 'the operator to move keys', 100);
    await operator.kill9();
    retired.push(operator);
    const mid = await slotMapOf(k, namespace, csName);
    expect(mid?.document.migrating.length).toBeGreaterThan(0);
    await sleep(1_000);

    operator = await startOperator({ identity: `op-a2-${ctx.runId}`, namespace, leaseName });
    await setShards(k, namespace, csName, [shard(0, 2), shard(1), shard(2)], 20_000);
    const { map } = await waitStable(120_000);
    await sleep(1_000);
    await stopLoad();
    expect(slotsPerShard(map.document.ranges)).toEqual({ 'shard-0': 8192, 'shard-1': 4096, 'shard-2': 4096 });
    expect(map.document.epoch).toBe((mid?.document.epoch ?? 0) + 1);
    await expectExactTotals();
    await expectKeysOnOwners(map.document.ranges);
  }, 240_000);

  it('drains a removed shard: its slots move, nothing stays on it, totals exact', async () => {
    await runLoad();
    await sleep(1_000);
    await setShards(k, namespace, csName, [shard(0), shard(1)]);
    const { map } = await waitStable(120_000);
    await sleep(1_000);
    await stopLoad();
    expect(slotsPerShard(map.document.ranges)).toEqual({ 'shard-0': 8192, 'shard-1': 8192 });
    expect(Object.keys(map.document.shards).sort()).toEqual(['shard-0', 'shard-1']);
    await expectExactTotals();
    await expectKeysOnOwners(map.document.ranges);
    const [, left] = await ctx
      .shard('shard-2')
      .redis.scan('0', 'MATCH', `*:{*}:${ctx.name('')}*`, 'COUNT', 100_000);
    expect(left).toEqual([]);
  }, 240_000);

  it('runs one leader among two replicas; the standby takes over when the leader dies, and releases the Lease on SIGTERM', async () => {
    const standby = await startOperator({ identity: `op-b-${ctx.runId}`, namespace, leaseName });
    standbys.push(standby);
    await sleep(2_000);
    expect(await leaseHolder(k, leaseName)).toBe(operator.identity);
    expect(await operator.metric('hyperscale_operator_leader')).toBe(1);
    expect(await standby.metric('hyperscale_operator_leader')).toBe(0);

    await operator.kill9();
    retired.push(operator);
    const killedAt = Date.now();
    await waitFor(
      async () => (await leaseHolder(k, leaseName)) === standby.identity,
      20_000,
      'the standby to take over',
    );
    const takeoverMs = Date.now() - killedAt;
    expect(takeoverMs).toBeLessThan(4_000 + 3_000);
    await waitFor(
      async () => (await standby.metric('hyperscale_operator_leader')) === 1,
      5_000,
      'standby leading',
    );

    // The new leader acts on spec changes.
    await setShards(k, namespace, csName, [shard(0), shard(1, 3)]);
    const { map } = await waitStable(120_000);
    expect(slotsPerShard(map.document.ranges)).toEqual({ 'shard-0': 4096, 'shard-1': 12288 });
    await expectExactTotals();
    console.info(`[operator] leader killed -9: standby took the Lease after ${takeoverMs} ms`);

    await standby.stop();
    expect(await leaseHolder(k, leaseName)).toBeUndefined();
  }, 240_000);
});
