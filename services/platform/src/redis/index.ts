/**
 * Redis for the platform: `createRedisClient` (Sentinel group or direct server, bounded commands,
 * fail-fast while disconnected, READONLY → reconnect), `RedisShardClient` (metrics, health,
 * `'master-switch'` event), typed errors, `defineScripts` and the idempotent-apply Lua pattern.
 */
export {
  REDIS_DEFAULTS,
  buildRedisOptions,
  cappedBackoff,
  createRedisClient,
  isSentinelTarget,
  waitForRedisReady,
  type RedisClientOptions,
  type RedisDirectTarget,
  type RedisEndpoint,
  type RedisReconnectOptions,
  type RedisSentinelTarget,
  type RedisTuning,
} from './client.js';
export {
  RedisError,
  RedisReadOnlyError,
  RedisReplyError,
  RedisTimeoutError,
  RedisUnavailableError,
  isReadOnlyReply,
  isRedisClientError,
  toRedisError,
  type RedisErrorKind,
} from './errors.js';
export {
  defineScripts,
  type ScriptArg,
  type ScriptDefinition,
  type ScriptInvoker,
  type ScriptInvokers,
} from './scripts.js';
export {
  idempotencyKey,
  idempotentLua,
  idempotentScript,
  parseIdempotentReply,
  type IdempotentResult,
} from './idempotent.js';
export { pingWithTimeout, redisReadinessCheck } from './health.js';
export {
  MasterTracker,
  parseSwitchMaster,
  type MasterChange,
  type SwitchMasterMessage,
} from './master-tracker.js';
export { SentinelSubscriber, type SentinelSubscriberOptions } from './sentinel-subscriber.js';
export {
  RedisShardClient,
  type MasterSwitchEvent,
  type RedisShardDeps,
  type RedisShardOptions,
} from './shard-client.js';
export {
  TrackedReader,
  type InvalidationListener,
  type TrackedReaderDeps,
  type TrackedReaderOptions,
} from './tracked-reader.js';
export {
  TrackedCache,
  openShardReadCache,
  type InvalidationSource,
  type ReadCacheSettings,
  type ShardReadCache,
  type TrackedCacheOptions,
} from './tracked-cache.js';
export { redisShardMetrics, type RedisShardMetrics } from './metrics.js';
