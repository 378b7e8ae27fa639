import { CoordinationV1Api, V1MicroTime, type KubeConfig, type V1Lease } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { Gauge, type Registry } from 'prom-client';
import { makeKubeApi } from '@hyperscale/platform/kube';
import { isConflict, isNotFound } from './api.js';

/**
 * Lease times are `MicroTime`: the API server accepts only six fractional digits (V1MicroTime
 * serializes so), and the client hands them back as strings despite the Date type.
 */
function microTime(value?: Date | string): V1MicroTime {
  return new V1MicroTime(value === undefined ? Date.now() : new Date(value).getTime());
}

export interface LeaderElectionOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  name: string;
  /** This replica's identity (the pod name). */
  identity: string;
  /** A leader that has not renewed for this long may be replaced. Default 15 s. */
  leaseDurationMs?: number;
  /** The leader steps down when it could not renew within this (must be < leaseDuration). Default 10 s. */
  renewDeadlineMs?: number;
  /** Interval of acquire/renew attempts. Default 2 s. */
  retryPeriodMs?: number;
  /** Deadline of each API call. Default 5 s. */
  requestTimeoutMs?: number;
  logger: Logger;
  registry: Registry;
}

/**
 * Leader election over a `coordination.k8s.io/v1` Lease, the protocol of client-go's
 * leaderelection: create or take over the Lease with optimistic concurrency (resourceVersion),
 * renew every retry period, and consider another holder expired only after `leaseDuration` of
 * OUR clock has passed without the record changing (never compares clocks across machines).
 *
 * `run(onStartedLeading)` resolves when leadership is lost or `stop()` is called. The leader's work
 * gets an AbortSignal that fires at once when renewing fails past the renew deadline, before
 * another replica can possibly take over (renewDeadline < leaseDuration).
 */
export class LeaderElector {
  private readonly api: CoordinationV1Api;
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private readonly logger: Logger;
  private readonly isLeader: Gauge;
  private observed: { record: string; at: number } | undefined;
  private stopped = false;
  private wake: (() => void) | undefined;
  private leading = false;

  constructor(private readonly options: LeaderElectionOptions) {
    this.leaseDurationMs = options.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = options.renewDeadlineMs ?? 10_000;
    this.retryPeriodMs = options.retryPeriodMs ?? 2_000;
    if (this.renewDeadlineMs >= this.leaseDurationMs)
      throw new Error('renewDeadline must be below leaseDuration');
    if (this.retryPeriodMs >= this.renewDeadlineMs)
      throw new Error('retryPeriod must be below renewDeadline');
    this.api = makeKubeApi(options.kubeConfig, CoordinationV1Api, options.requestTimeoutMs ?? 5_000);
    this.logger = options.logger.child({
      component: 'leader-election',
      lease: `${options.namespace}/${options.name}`,
    });
    this.isLeader = new Gauge({
      name: 'hyperscale_operator_leader',
      help: '1 while this replica holds the leader Lease',
      registers: [options.registry],
    });
  }

  /**
   * Campaigns until leader, runs `lead(signal)` while renewing, and returns once leadership ends
   * (renew failed past the deadline, `lead` returned, or stop()). Releases the Lease on stop.
   */
  async run(lead: (signal: AbortSignal) => Promise<void>): Promise<void> {
    // A renewal counts from when its request was SENT: a standby may see the new record as soon as
    // the API server commits it, so its lease duration can start before our response arrives.
    let lastRenew = Date.now();
    while (!this.stopped && !(await this.tryAcquireOrRenew())) {
      await this.sleep(this.retryPeriodMs);
      lastRenew = Date.now();
    }
    if (this.stopped) return;
    this.leading = true;
    this.isLeader.set(1);
    this.logger.info({ identity: this.options.identity }, 'became leader');
    const controller = new AbortController();
    const work = lead(controller.signal).catch((err: unknown) => {
      this.logger.error({ err }, 'leader work failed');
    });
    let workDone = false;
    void work.finally(() => {
      workDone = true;
      this.wake?.();
    });
    while (!this.stopped && !workDone) {
      const deadline = lastRenew + this.renewDeadlineMs;
      // After failed renewals the last wait ends at the deadline, not up to a retry period past it.
      await this.sleep(Math.min(this.retryPeriodMs, Math.max(0, deadline - Date.now())));
      if (this.stopped || workDone) break;
      const sent = Date.now();
      const outcome = await this.renewBy(deadline);
      if (outcome === 'renewed') {
        lastRenew = sent;
      } else if (outcome === 'deadline' || Date.now() >= deadline) {
        this.logger.error(
          { renewDeadlineMs: this.renewDeadlineMs },
          'leadership lost: could not renew the Lease',
        );
        break;
      }
    }
    controller.abort(new Error('leadership ended'));
    await work;
    this.leading = false;
    this.isLeader.set(0);
    if (this.stopped) await this.release();
  }

  /** Ends the campaign or the leadership (the Lease is released so a standby takes over at once). */
  stop(): void {
    this.stopped = true;
    this.wake?.();
  }

  get leader(): boolean {
    return this.leading;
  }

  /**
   * One renewal, given up at `deadline` even while its request is still in flight: a call
   * that hangs for up to `requestTimeout` must not keep a leader working past its renew deadline,
   * when a standby may already take over (client-go cancels the renewal at the deadline too).
   */
  private async renewBy(deadline: number): Promise<'renewed' | 'failed' | 'deadline'> {
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<'deadline'>((resolve) => {
      timer = setTimeout(() => resolve('deadline'), Math.max(0, deadline - Date.now()));
    });
    const attempt = this.tryAcquireOrRenew().then((renewed): 'renewed' | 'failed' =>
      renewed ? 'renewed' : 'failed',
    );
    try {
      return await Promise.race([attempt, expired]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const { namespace, name, identity } = this.options;
    const now = microTime();
    const durationSeconds = Math.ceil(this.leaseDurationMs / 1_000);
    try {
      let lease: V1Lease;
      try {
        lease = await this.api.readNamespacedLease({ name, namespace });
      } catch (err) {
        if (!isNotFound(err)) throw err;
        await this.api.createNamespacedLease({
          namespace,
          body: {
            metadata: { name, namespace },
            spec: {
              holderIdentity: identity,
              leaseDurationSeconds: durationSeconds,
              acquireTime: now,
              renewTime: now,
              leaseTransitions: 0,
            },
          },
        });
        return true;
      }
      const spec = lease.spec ?? {};
      const holder = spec.holderIdentity ?? '';
      const record = `${holder}|${spec.renewTime === undefined ? '' : String(spec.renewTime as Date | string)}|${lease.metadata?.resourceVersion ?? ''}`;
      if (this.observed?.record !== record) this.observed = { record, at: Date.now() };
      const theirDurationMs = (spec.leaseDurationSeconds ?? durationSeconds) * 1_000;
      const expired = holder === '' || Date.now() - this.observed.at >= theirDurationMs;
      if (holder !== identity && !expired) return false;
      const takeover = holder !== identity;
      const body: V1Lease = {
        ...lease,
        spec: {
          ...spec,
          holderIdentity: identity,
          leaseDurationSeconds: durationSeconds,
          acquireTime: takeover ? now : spec.acquireTime === undefined ? now : microTime(spec.acquireTime),
          renewTime: now,
          leaseTransitions: (spec.leaseTransitions ?? 0) + (takeover ? 1 : 0),
        },
      };
      await this.api.replaceNamespacedLease({ name, namespace, body });
      if (takeover) this.logger.info({ previous: holder || null }, 'took over the Lease');
      return true;
    } catch (err) {
      if (isConflict(err)) return false;
      this.logger.warn({ err }, 'lease acquire/renew failed');
      return false;
    }
  }

  /** Gives the Lease up (holder cleared) so a standby need not wait for it to expire. */
  private async release(): Promise<void> {
    const { namespace, name, identity } = this.options;
    try {
      const lease = await this.api.readNamespacedLease({ name, namespace });
      if (lease.spec?.holderIdentity !== identity) return;
      await this.api.replaceNamespacedLease({
        name,
        namespace,
        body: {
          ...lease,
          spec: {
            ...lease.spec,
            holderIdentity: '',
            renewTime: microTime(),
            acquireTime: lease.spec.acquireTime === undefined ? undefined : microTime(lease.spec.acquireTime),
            leaseDurationSeconds: 1,
          },
        },
      });
      this.logger.info('released the Lease');
    } catch (err) {
      this.logger.warn({ err }, 'could not release the Lease; a standby takes over when it expires');
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
    });
  }
}
