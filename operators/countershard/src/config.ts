import { hostname } from 'node:os';
import { z } from 'zod';
import { loadConfig, millis, port, processEnv } from '@hyperscale/platform';

/** Every environment variable the operator reads (README, "Configuration"). */
export const operatorEnv = {
  ...processEnv,
  SERVICE_NAME: z.string().trim().min(1).default('countershard-operator'),
  METRICS_PORT: port.default(9104),
  SHUTDOWN_DELAY_MS: z.coerce.number().int().min(0).default(0),
  /** Path of a kubeconfig; unset = the pod's service account (in-cluster). */
  KUBECONFIG: z.string().trim().min(1).optional(),
  /** Watch CounterShards in this namespace only; unset = every namespace. */
  WATCH_NAMESPACE: z.string().trim().min(1).optional(),
  /** This replica's identity in the Lease (the pod name). */
  POD_NAME: z.string().trim().min(1).optional(),
  LEADER_ELECTION_NAMESPACE: z.string().trim().min(1).default('hyperscale-system'),
  LEADER_ELECTION_NAME: z.string().trim().min(1).default('countershard-operator'),
  LEASE_DURATION_MS: millis.default(15_000),
  LEASE_RENEW_DEADLINE_MS: millis.default(10_000),
  LEASE_RETRY_PERIOD_MS: millis.default(2_000),
  KUBE_REQUEST_TIMEOUT_MS: millis.default(10_000),
  RESYNC_MS: millis.default(60_000),
  /** A pod silent for this long no longer holds a migration (pods acknowledge every 2 s). */
  ACK_STALE_MS: millis.default(15_000),
  /** Pause after the last acknowledgement before data moves; must exceed the counter's request deadline. */
  MIGRATION_GRACE_MS: z.coerce.number().int().min(0).default(11_000),
  ACK_POLL_MS: millis.default(500),
  REDIS_COMMAND_TIMEOUT_MS: millis.default(5_000),
  REDIS_CONNECT_TIMEOUT_MS: millis.default(2_000),
};

export type OperatorConfig = z.infer<z.ZodObject<typeof operatorEnv>>;

/**
 * Reads and validates the environment.
 * @throws ConfigError naming every offending variable.
 */
export function loadOperatorConfig(
  env: Readonly<Record<string, string | undefined>> = process.env,
): OperatorConfig & { POD_NAME: string } {
  const config = loadConfig(operatorEnv, env);
  return { ...config, POD_NAME: config.POD_NAME ?? hostname() };
}
