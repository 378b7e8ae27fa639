/**
 * Leader election against the REAL local kube-apiserver, frozen with SIGSTOP (its port stays open,
 * requests hang): the leader must stop its work within the renew deadline of its last renewal,
 * before a standby may take the Lease, even while a renewal hangs for its whole request timeout.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { loadKubeConfig, operatorKubeconfigPath } from '../../../hack/testing/kube.js';
import { freezeServer, resumeFrozenServers, resumeServer } from '../../../hack/testing/stack-control.js';
import { LeaderElector } from '../src/kube/leader-election.js';
import {
  counterShardBody,
  createCounterShard,
  deleteCounterShard,
  getCounterShard,
  kubeClients,
  leaseHolder,
  sleep,
  startOperator,
  waitFor,
  type KubeClients,
  type OperatorProcess,
} from './helpers.js';

const namespace = 'hyperscale-system';
const runId = randomBytes(4).toString('hex');
const leaseName = `le-frozen-${runId}`;
const processLeaseName = `le-frozen-process-${runId}`;
const operators: OperatorProcess[] = [];
let k: KubeClients;

beforeAll(async () => {
  k = await kubeClients();
});
afterAll(async () => {
  await resumeFrozenServers();
  await Promise.all(operators.map((o) => o.stop()));
  if (k !== undefined) await deleteCounterShard(k, 'default', `frozen-${runId}`);
  for (const name of [leaseName, processLeaseName])
    await k?.leases.deleteNamespacedLease({ namespace, name }).catch(() => undefined);
}, 120_000);

describe('leader election while the API server hangs', () => {
  it('refuses timings where a leader could outlive its Lease or never retry before its deadline', () => {
    const base = {
      kubeConfig: loadKubeConfig(operatorKubeconfigPath()),
      namespace,
      name: leaseName,
      identity: 'timings',
      logger: pino({ level: 'silent' }),
    };
    const timings = (leaseDurationMs: number, renewDeadlineMs: number, retryPeriodMs: number) => () =>
      new LeaderElector({
        ...base,
        leaseDurationMs,
        renewDeadlineMs,
        retryPeriodMs,
        registry: new Registry(),
      });
    expect(timings(10_000, 10_000, 2_000)).toThrow(/renewDeadline must be below leaseDuration/);
    expect(timings(15_000, 2_000, 2_000)).toThrow(/retryPeriod must be below renewDeadline/);
    expect(timings(15_000, 10_000, 2_000)).not.toThrow();
  });

  it('aborts the leader’s work within the renew deadline of its last renewal, though the renewal call hangs longer', async () => {
    const renewDeadlineMs = 3_000;
    const elector = new LeaderElector({
      // The operator's own identity: the Role of k8s/operator/rbac.yaml on Leases.
      kubeConfig: loadKubeConfig(operatorKubeconfigPath()),
      namespace,
      name: leaseName,
      identity: 'leader-under-test',
      leaseDurationMs: 6_000,
      renewDeadlineMs,
      retryPeriodMs: 500,
      // Longer than the renew deadline: a hanging renewal alone would keep the leader past it.
      requestTimeoutMs: 8_000,
      logger: pino({ level: 'silent' }),
      registry: new Registry(),
    });
    let abortedAt: number | undefined;
    const campaign = elector.run(
      (signal) =>
        new Promise<void>((resolve) =>
          signal.addEventListener('abort', () => {
            abortedAt = Date.now();
            resolve();
          }),
        ),
    );
    try {
      await waitFor(() => elector.leader, 15_000, 'the elector to lead');
      // Healthy: renewals keep it leading past the renew deadline.
      await sleep(renewDeadlineMs + 500);
      expect(abortedAt).toBeUndefined();
      const lease = await k.leases.readNamespacedLease({ namespace, name: leaseName });
      expect(lease.spec?.holderIdentity).toBe('leader-under-test');

      await freezeServer('kube-apiserver');
      const frozeAt = Date.now();
      await waitFor(() => abortedAt, 15_000, 'the leader to step down', 20);
      const afterFreeze = (abortedAt as number) - frozeAt;
      console.info(`[leader-election] API server frozen: the leader stepped down after ${afterFreeze} ms`);
      // The last good renewal was sent at most about two retry periods before the freeze, so the
      // leader stops between deadline − 1.2 s and deadline after it. Counting from the end of a
      // hanging renewal would take until request timeout (8 s) after the freeze.
      expect(afterFreeze).toBeGreaterThanOrEqual(renewDeadlineMs - 1_200);
      expect(afterFreeze).toBeLessThanOrEqual(renewDeadlineMs + 300);
      await campaign;
      expect(elector.leader).toBe(false);
    } finally {
      elector.stop();
      await resumeServer('kube-apiserver');
      await campaign;
    }
  }, 90_000);
});

describe('the operator process while the API server hangs', () => {
  it('the leader exits within renew deadline + request timeout (nothing waits on the frozen server), and a new process leads after it returns', async () => {
    const extraEnv = { KUBE_REQUEST_TIMEOUT_MS: '1000', RESYNC_MS: '1000' };
    const start = (identity: string) =>
      startOperator({ identity, namespace: 'default', leaseName: processLeaseName, extraEnv }).then((o) => {
        operators.push(o);
        return o;
      });
    // A CounterShard to reconcile: its resyncs (every second here) call the server while it is frozen.
    const csName = `frozen-${runId}`;
    const shards = [0, 1].map((n) => ({ name: `shard-${n}`, masterName: `shard-${n}`, weight: 1 }));
    await createCounterShard(k, counterShardBody(csName, 'default', shards, 20_000));
    const leader = await start(`frozen-a-${runId}`);
    await waitFor(
      async () => (await leader.metric('hyperscale_operator_leader')) === 1,
      20_000,
      'leadership',
    );
    await waitFor(
      async () => (await getCounterShard(k, 'default', csName)).status?.phase === 'Stable',
      30_000,
      'the CounterShard to be Stable',
    );
    await sleep(1_500);
    await freezeServer('kube-apiserver');
    const frozeAt = Date.now();
    // The helpers' renew deadline is 3 s and this process's API calls give up after 1 s.
    const code = await Promise.race([leader.exited, sleep(15_000).then(() => 'still running' as const)]);
    const exitedAfter = Date.now() - frozeAt;
    console.info(
      `[leader-election] API server frozen: the operator process exited ${code} after ${exitedAfter} ms`,
    );
    expect(code).toBe(1);
    expect(exitedAfter).toBeLessThanOrEqual(3_000 + 1_000 + 1_500);
    expect(leader.output.join('')).toContain('leadership lost; exiting so a fresh process campaigns again');

    await resumeServer('kube-apiserver');
    const next = await start(`frozen-b-${runId}`);
    await waitFor(
      async () => (await next.metric('hyperscale_operator_leader')) === 1,
      20_000,
      'the new process to lead',
    );
    expect(await leaseHolder(k, processLeaseName)).toBe(next.identity);
  }, 90_000);
});
