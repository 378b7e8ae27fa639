import {
  GracefulShutdown,
  Health,
  buildOpsServer,
  createLogger,
  createRegistry,
  runMain,
} from '@hyperscale/platform';
import { loadOperatorConfig } from './config.js';
import { loadKubeConfig } from './kube/api.js';
import { KubeCluster } from './kube/cluster.js';
import { CounterShardWatch } from './kube/countershard-watch.js';
import { LeaderElector } from './kube/leader-election.js';
import { operatorMetrics } from './metrics.js';
import { Reconciler } from './reconciler.js';
import { ShardConnections } from './redis-shards.js';
import { WorkQueue } from './work-queue.js';

async function start(): Promise<void> {
  const config = loadOperatorConfig();
  const logger = createLogger({ service: config.SERVICE_NAME, level: config.LOG_LEVEL });
  const registry = createRegistry({ service: config.SERVICE_NAME });
  const health = new Health();
  const shutdown = new GracefulShutdown({
    logger,
    health,
    delayMs: config.SHUTDOWN_DELAY_MS,
    timeoutMs: config.SHUTDOWN_TIMEOUT_MS,
  });
  const kubeConfig = loadKubeConfig(config.KUBECONFIG);
  const cluster = new KubeCluster(kubeConfig, {
    requestTimeoutMs: config.KUBE_REQUEST_TIMEOUT_MS,
    component: config.SERVICE_NAME,
    logger,
  });
  const connections = new ShardConnections({
    commandTimeoutMs: config.REDIS_COMMAND_TIMEOUT_MS,
    connectTimeoutMs: config.REDIS_CONNECT_TIMEOUT_MS,
    logger,
  });
  const reconciler = new Reconciler({
    cluster,
    connections,
    metrics: operatorMetrics(registry),
    logger,
    settings: {
      ackStaleMs: config.ACK_STALE_MS,
      graceMs: config.MIGRATION_GRACE_MS,
      ackPollMs: config.ACK_POLL_MS,
      resyncMs: config.RESYNC_MS,
      shardConnectTimeoutMs: config.REDIS_CONNECT_TIMEOUT_MS,
    },
  });
  const queue = new WorkQueue();
  const watch = new CounterShardWatch({
    kubeConfig,
    namespace: config.WATCH_NAMESPACE,
    resyncMs: config.RESYNC_MS,
    requestTimeoutMs: config.KUBE_REQUEST_TIMEOUT_MS,
    onKey: (key) => queue.add(key),
    logger,
    registry,
  });
  const elector = new LeaderElector({
    kubeConfig,
    namespace: config.LEADER_ELECTION_NAMESPACE,
    name: config.LEADER_ELECTION_NAME,
    identity: config.POD_NAME,
    leaseDurationMs: config.LEASE_DURATION_MS,
    renewDeadlineMs: config.LEASE_RENEW_DEADLINE_MS,
    retryPeriodMs: config.LEASE_RETRY_PERIOD_MS,
    requestTimeoutMs: config.KUBE_REQUEST_TIMEOUT_MS,
    logger,
    registry,
  });
  const ops = buildOpsServer({ registry, health, logger });
  // A standby is ready (it campaigns); a leader is ready once its first list of CounterShards worked.
  health.addReadinessCheck('countershard-watch', () => !elector.leader || watch.hasSynced);

  let stopping = false;
  const campaign = elector.run(async (signal) => {
    watch.start();
    try {
      await queue.run((key) => reconciler.reconcile(key, signal), signal);
    } finally {
      watch.stop();
      queue.close();
    }
  });
  shutdown
    .add('leader election', async () => {
      stopping = true;
      elector.stop();
      await campaign;
    })
    .add('redis', () => connections.close())
    .add('ops', () => ops.close());
  shutdown.install();
  await ops.listen({ host: config.METRICS_HOST, port: config.METRICS_PORT });
  logger.info(
    { identity: config.POD_NAME, metricsPort: config.METRICS_PORT },
    'countershard operator started; campaigning for the Lease',
  );

  void campaign.then(() => {
    if (stopping) return;
    // Leadership lost: start over as a fresh process (in-memory state may be stale), as
    // controller-runtime does; Kubernetes restarts the container.
    logger.error('leadership lost; exiting so a fresh process campaigns again');
    setTimeout(() => process.exit(1), 50).unref();
  });
}

runMain('countershard-operator', start);
