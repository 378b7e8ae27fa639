import { CustomObjectsApi, Watch, type KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import { COUNTERSHARD, asCounterShard, keyOf } from '../resource.js';
import { makeKubeApi } from '@hyperscale/platform/kube';

export interface CounterShardWatchOptions {
  kubeConfig: KubeConfig;
  /** Only this namespace; undefined = all namespaces. */
  namespace: string | undefined;
  /** Every key found is handed over again this often (level-triggered safety net). Default 60 s. */
  resyncMs?: number;
  /** A watch is closed by the server after this and re-opened (bounded calls). Default 300 s. */
  watchTimeoutSeconds?: number;
  /** Deadline of list calls. Default 10 s. */
  requestTimeoutMs?: number;
  onKey: (key: string) => void;
  logger: Logger;
  registry: Registry;
}

/**
 * List + watch of CounterShards that never gives up: after a list, a watch from its
 * resourceVersion; a closed, failed or expired (410) watch leads to a new list after a capped
 * backoff; every `resyncMs` all known keys are handed over again. Every ADDED/MODIFIED/DELETED
 * event hands the object's key to `onKey`.
 */
export class CounterShardWatch {
  private readonly api: CustomObjectsApi;
  private readonly watch: Watch;
  private readonly logger: Logger;
  private readonly restarts: Counter;
  private readonly known = new Set<string>();
  private abort: AbortController | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private failures = 0;
  private synced = false;

  constructor(private readonly options: CounterShardWatchOptions) {
    this.api = makeKubeApi(options.kubeConfig, CustomObjectsApi, options.requestTimeoutMs ?? 10_000);
    this.watch = new Watch(options.kubeConfig);
    this.logger = options.logger.child({ component: 'countershard-watch' });
    this.restarts = new Counter({
      name: 'hyperscale_operator_watch_restarts_total',
      help: 'CounterShard list+watch restarts (closed, failed or expired watches)',
      labelNames: ['reason'],
      registers: [options.registry],
    });
  }

  start(): void {
    this.resyncTimer = setInterval(() => {
      for (const key of this.known) this.options.onKey(key);
    }, this.options.resyncMs ?? 60_000);
    this.resyncTimer.unref();
    void this.loop();
  }

  /** True once the first list succeeded. */
  get hasSynced(): boolean {
    return this.synced;
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.resyncTimer);
    this.abort?.abort();
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      let reason = 'closed';
      try {
        const resourceVersion = await this.list();
        this.synced = true;
        this.failures = 0;
        reason = await this.watchFrom(resourceVersion);
      } catch (err) {
        reason = 'error';
        this.logger.warn({ err }, 'countershard list/watch failed');
      }
      if (this.stopped) return;
      this.restarts.inc({ reason });
      if (reason !== 'closed') this.failures += 1;
      const delay = this.failures === 0 ? 0 : Math.min(10_000, 200 * 2 ** Math.min(this.failures, 6));
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }

  private async list(): Promise<string> {
    const { group, version, plural } = COUNTERSHARD;
    const list = (await (this.options.namespace === undefined
      ? this.api.listClusterCustomObject({ group, version, plural })
      : this.api.listNamespacedCustomObject({
          group,
          version,
          plural,
          namespace: this.options.namespace,
        }))) as {
      items?: unknown[];
      metadata?: { resourceVersion?: string };
    };
    const keys = new Set<string>();
    for (const item of list.items ?? []) {
      const object = asCounterShard(item);
      if (object !== undefined) keys.add(keyOf(object));
    }
    // Objects deleted while we were not watching: their keys go through once more (the reconcile
    // finds them gone and forgets them).
    for (const key of this.known) if (!keys.has(key)) this.options.onKey(key);
    this.known.clear();
    for (const key of keys) {
      this.known.add(key);
      this.options.onKey(key);
    }
    return list.metadata?.resourceVersion ?? '';
  }

  /** Resolves with the reason the watch ended. */
  private async watchFrom(resourceVersion: string): Promise<string> {
    const { group, version, plural } = COUNTERSHARD;
    const path =
      this.options.namespace === undefined
        ? `/apis/${group}/${version}/${plural}`
        : `/apis/${group}/${version}/namespaces/${this.options.namespace}/${plural}`;
    return new Promise<string>((resolve) => {
      let settled = false;
      const finish = (reason: string): void => {
        if (settled) return;
        settled = true;
        resolve(reason);
      };
      this.watch
        .watch(
          path,
          {
            resourceVersion,
            allowWatchBookmarks: true,
            timeoutSeconds: this.options.watchTimeoutSeconds ?? 300,
          },
          (phase: string, object: unknown) => {
            if (phase === 'ERROR') {
              const code = (object as { code?: number } | null)?.code;
              this.abort?.abort();
              finish(code === 410 ? 'expired' : 'error');
              return;
            }
            if (phase === 'BOOKMARK') return;
            const shard = asCounterShard(object);
            if (shard === undefined) return;
            const key = keyOf(shard);
            if (phase === 'DELETED') this.known.delete(key);
            else this.known.add(key);
            this.options.onKey(key);
          },
          (err: unknown) => {
            if (err !== null && err !== undefined && !this.stopped) {
              this.logger.warn({ err }, 'countershard watch ended with an error');
              finish('error');
            } else finish('closed');
          },
        )
        .then(
          (controller) => {
            this.abort = controller;
            if (this.stopped) controller.abort();
          },
          (err: unknown) => {
            this.logger.warn({ err }, 'countershard watch could not start');
            finish('error');
          },
        );
    });
  }
}
