export {
  MysqlCommitOutcomeUnknownError,
  MysqlErrno,
  MysqlMigrationError,
  MysqlTimeoutError,
  isConnectionLevelError,
  isRetryableTransactionError,
  mysqlErrno,
} from './errors.js';
export type { MysqlPoolName } from './errors.js';
export {
  GtidParseError,
  formatGtidPosition,
  gtidCaughtUp,
  gtidTransactionsBehind,
  parseGtidPosition,
} from './gtid.js';
export type { Gtid } from './gtid.js';
export { RecentWriters } from './recent-writers.js';
export type { RecentWrite, RecentWritersOptions } from './recent-writers.js';
export { decideRead } from './routing.js';
export type { ReadDecision, ReadReason, ReadRoutingState } from './routing.js';
export { MysqlConnection, MysqlPool, bindParams, createMysqlPools } from './pool.js';
export type {
  MysqlExecutor,
  MysqlPoolOptions,
  MysqlPools,
  MysqlPoolsOptions,
  SqlParam,
  StatementOptions,
  WriteResult,
} from './pool.js';
export { MysqlRouter } from './router.js';
export type { MysqlRouterOptions, ReadChoice, ReadOptions, ReadResult, WriteOptions } from './router.js';
export { ReplicaLagMonitor } from './replica-lag-monitor.js';
export type {
  LagSource,
  ReplicaLagMonitorOptions,
  ReplicaStatus,
  ReplicaStatusSource,
} from './replica-lag-monitor.js';
export { defaultMigrationsDir, migrate, migrationLockName } from './migrate.js';
export type { MigrateOptions, MigrateResult } from './migrate.js';
export {
  ReplicaCatchUpTimeoutError,
  createDatabase,
  databaseOfUrl,
  dropDatabase,
  quoteDatabaseName,
  waitForReplicaCatchUp,
  withDatabase,
} from './database-admin.js';
export { mysqlMetrics, replicaMetrics } from './metrics.js';
export type { MysqlMetrics, ReplicaMetrics } from './metrics.js';
