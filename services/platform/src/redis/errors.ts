/** Coarse error classes, also the `kind` label of `hyperscale_redis_command_errors_total`. */
export type RedisErrorKind = 'timeout' | 'unavailable' | 'readonly' | 'reply';

/**
 * Base class of every typed Redis error, so callers catch "anything Redis" with one `instanceof`.
 * `retryable` means "transient: the same command may succeed soon"; it does NOT mean "certainly not
 * applied" — a timed-out write may still land. Repeat state-changing commands only when they are
 * idempotent (request id checked inside the script, see `idempotentScript`).
 */
export class RedisError extends Error {
  readonly kind: RedisErrorKind;
  /** Redis error prefix (`READONLY`, `WRONGTYPE`, `ERR`...) or a platform code (`TIMEOUT`...). */
  readonly code: string;
  readonly retryable: boolean;
  /** Shard name when known, for logs. */
  readonly shard: string | undefined;

  constructor(
    kind: RedisErrorKind,
    code: string,
    message: string,
    options: { retryable: boolean; shard?: string | undefined; cause?: unknown },
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'RedisError';
    this.kind = kind;
    this.code = code;
    this.retryable = options.retryable;
    this.shard = options.shard;
  }
}

/**
 * The command got no reply within `commandTimeoutMs` (hung or frozen server, saturated network).
 * The command may still be executed later: ioredis does not take back what it already wrote.
 */
export class RedisTimeoutError extends RedisError {
  constructor(message: string, options: { shard?: string | undefined; cause?: unknown } = {}) {
    super('timeout', 'TIMEOUT', message, { ...options, retryable: true });
    this.name = 'RedisTimeoutError';
  }
}

/**
 * No usable connection: disconnected (commands fail fast instead of queueing), reconnect attempts
 * exhausted for this command, the server is loading / busy / has no master, or the client was
 * closed (`code: 'CLOSED'`, the only non-retryable case).
 */
export class RedisUnavailableError extends RedisError {
  constructor(
    code: string,
    message: string,
    options: { retryable?: boolean; shard?: string | undefined; cause?: unknown } = {},
  ) {
    super('unavailable', code, message, { ...options, retryable: options.retryable ?? true });
    this.name = 'RedisUnavailableError';
  }
}

/**
 * The server is a replica (`READONLY`): the write was rejected, so it was certainly not applied.
 * A Sentinel client reconnects to the current master on this error by itself; a direct client
 * pointed at a replica keeps getting it.
 */
export class RedisReadOnlyError extends RedisError {
  constructor(message: string, options: { shard?: string | undefined; cause?: unknown } = {}) {
    super('readonly', 'READONLY', message, { ...options, retryable: true });
    this.name = 'RedisReadOnlyError';
  }
}

/** Any other error reply (`WRONGTYPE`, `ERR` from a script...): a bug or bad data, not retried. */
export class RedisReplyError extends RedisError {
  constructor(code: string, message: string, options: { shard?: string | undefined; cause?: unknown } = {}) {
    super('reply', code, message, { ...options, retryable: false });
    this.name = 'RedisReplyError';
  }
}

/** Reply prefixes that mean "try again shortly": the server cannot serve now, the command did not run. */
const TRANSIENT_REPLIES: ReadonlySet<string> = new Set([
  'LOADING',
  'BUSY',
  'MASTERDOWN',
  'TRYAGAIN',
  'CLUSTERDOWN',
]);

/**
 * Maps whatever ioredis rejected with to a typed {@link RedisError}; already-typed errors pass
 * through unchanged. Relies on ioredis 5.9's error names and messages (`Command timed out`,
 * `Stream isn't writeable...`, `Connection is closed.`, `MaxRetriesPerRequestError`,
 * `Command aborted due to connection close`) and on Redis reply prefixes; anything unrecognised
 * becomes a non-retryable `RedisReplyError` with code `UNKNOWN`, keeping the original as `cause`.
 */
export function toRedisError(err: unknown, shard?: string): RedisError {
  if (err instanceof RedisError) return err;
  const opts = { shard, cause: err };
  if (!(err instanceof Error))
    return new RedisReplyError('UNKNOWN', `Redis call failed: ${String(err)}`, opts);
  const { message, name } = err;
  if (message === 'Command timed out')
    return new RedisTimeoutError(withShard('Redis command timed out', shard), opts);
  if (message.startsWith("Stream isn't writeable")) {
    return new RedisUnavailableError(
      'DISCONNECTED',
      withShard('Redis is not connected (command not sent)', shard),
      opts,
    );
  }
  if (message === 'Connection is closed.') {
    return new RedisUnavailableError('CLOSED', withShard('Redis client is closed', shard), {
      ...opts,
      retryable: false,
    });
  }
  if (name === 'MaxRetriesPerRequestError' || name === 'AbortError') {
    return new RedisUnavailableError('CONNECTION_LOST', withShard(message, shard), opts);
  }
  if ('code' in err && typeof err.code === 'string' && err.code.startsWith('E')) {
    return new RedisUnavailableError(err.code, withShard(message, shard), opts); // socket errors
  }
  const prefix = /^([A-Z][A-Z_-]+)\s/.exec(message)?.[1] ?? 'ERR';
  if (prefix === 'READONLY') return new RedisReadOnlyError(withShard(message, shard), opts);
  if (TRANSIENT_REPLIES.has(prefix))
    return new RedisUnavailableError(prefix, withShard(message, shard), opts);
  return new RedisReplyError(prefix, withShard(message, shard), opts);
}

const CLIENT_ERROR_NAMES: ReadonlySet<string> = new Set([
  'ReplyError',
  'AbortError',
  'MaxRetriesPerRequestError',
  'ParserError',
  'RedisError',
  'InterruptError',
]);

/**
 * True when `err` came from ioredis or the server (reply errors, timeouts, disconnects, socket
 * errors) rather than from the caller's own code, so wrappers map only those and let programming
 * errors (TypeError...) through unchanged.
 */
export function isRedisClientError(err: unknown): boolean {
  if (err instanceof RedisError) return true;
  if (!(err instanceof Error)) return false;
  if (CLIENT_ERROR_NAMES.has(err.name)) return true;
  const { message } = err;
  if (message === 'Command timed out' || message === 'Connection is closed.') return true;
  if (message.startsWith("Stream isn't writeable")) return true;
  return 'code' in err && typeof err.code === 'string' && err.code.startsWith('E') && 'syscall' in err;
}

/** True for a `READONLY` reply, raw or typed: the connection points at a replica. */
export function isReadOnlyReply(err: unknown): boolean {
  if (err instanceof RedisReadOnlyError) return true;
  return err instanceof Error && err.message.startsWith('READONLY');
}

function withShard(message: string, shard: string | undefined): string {
  return shard === undefined ? message : `${message} (shard ${shard})`;
}
