import {
  CircuitState,
  ConsecutiveBreaker,
  ExponentialBackoff,
  TimeoutStrategy,
  circuitBreaker,
  handleWhen,
  isBrokenCircuitError,
  retry,
  timeout,
  type RetryPolicy,
} from 'cockatiel';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { countsAsFailureByDefault, isRetryableByDefault } from './classify.js';
import {
  BreakerOpenError,
  DependencyTimeoutError,
  OperationAbortedError,
  type PolicyIdentity,
} from './errors.js';
import { breakerMetrics, type BreakerState } from './metrics.js';

/** Retry settings; `maxAttempts` counts every call, the first one included (3 = 1 call + 2 retries). */
export interface PolicyRetryOptions {
  maxAttempts: number;
  /** First backoff delay; later delays grow exponentially with decorrelated jitter. */
  initialDelayMs: number;
  /** Upper bound of one backoff delay. */
  maxDelayMs: number;
}

/** Breaker settings: open after `consecutiveFailures` failed attempts in a row. */
export interface PolicyBreakerOptions {
  consecutiveFailures: number;
  /** How long the breaker stays open before the next call is let through as a half-open probe. */
  halfOpenAfterMs: number;
}

/** Settings of one dependency policy; see {@link createPolicy}. */
export interface PolicyOptions {
  /** Instance name, unique per dependency instance and low-cardinality, e.g. `redis:shard-1`. */
  name: string;
  /** Kind of dependency, e.g. `redis`, `mysql`, `kafka`. */
  dependency: string;
  /**
   * Budget of ONE attempt; the attempt's promise is abandoned (not cancelled) when it runs out.
   * `null` adds no timeout layer — only for calls their client already bounds (an ioredis
   * command with `commandTimeout`, a GroupCommitProducer send): the layer costs an
   * AbortController and a timer per call, a measurable share of a hot path's CPU.
   */
  timeoutMs: number | null;
  /** `false` for calls that must never be repeated (non-idempotent writes). */
  retry: PolicyRetryOptions | false;
  breaker: PolicyBreakerOptions;
  /** Which errors are worth another attempt; default {@link isRetryableByDefault}. */
  isRetryable?: (err: unknown) => boolean;
  /** Which errors count against the dependency; default {@link countsAsFailureByDefault}. */
  countsAsFailure?: (err: unknown) => boolean;
}

/** Injected by the process: where breaker metrics go and where transitions are logged. */
export interface PolicyDeps {
  registry: Registry;
  logger: Logger;
}

/** A disposable subscription. */
export interface PolicySubscription {
  dispose(): void;
}

/**
 * Timeout + retry + circuit breaker for one dependency instance. Every call to that instance goes
 * through `execute`, so the breaker sees every outcome.
 */
export interface DependencyPolicy {
  readonly name: string;
  readonly dependency: string;
  /**
   * Runs `fn` under the policy. `fn` receives an AbortSignal that fires when the attempt times out
   * or the caller aborts; pass it on where the client supports it. Throws `BreakerOpenError` while
   * the breaker is open (without calling `fn`), `DependencyTimeoutError` when the last attempt
   * timed out, `OperationAbortedError` when `signal` fired, and otherwise `fn`'s own last error.
   * Worst-case duration: maxAttempts × timeoutMs + (maxAttempts − 1) × maxDelayMs.
   */
  execute<T>(fn: (signal: AbortSignal) => Promise<T> | T, signal?: AbortSignal): Promise<T>;
  /**
   * Current breaker state. The open → half-open move is lazy (cockatiel): the state reads `open`
   * after `halfOpenAfterMs` until the next call becomes the probe.
   */
  breakerState(): BreakerState;
  /** Called on every transition with the new state; listener errors are logged, not thrown. */
  onStateChange(listener: (state: BreakerState) => void): PolicySubscription;
}

/**
 * Builds a per-dependency policy from cockatiel primitives: retry (outermost, only errors the
 * `isRetryable` predicate accepts, exponential backoff) → circuit breaker (`ConsecutiveBreaker`,
 * counts each attempt, so a flapping dependency opens it quickly) → aggressive timeout (per
 * attempt). Retries never run while the breaker is open: a `BrokenCircuitError` ends the call at
 * once. The caller's own abort is neither retried nor counted as a dependency failure.
 *
 * Metrics on `deps.registry`: `hyperscale_breaker_state{dependency,name}` (0 closed, 1 half-open,
 * 2 open) and `hyperscale_breaker_transitions_total{dependency,name,to}`.
 *
 * @throws RangeError when a numeric option is not a positive integer (maxAttempts ≥ 1).
 */
export function createPolicy(options: PolicyOptions, deps: PolicyDeps): DependencyPolicy {
  validate(options);
  const identity: PolicyIdentity = { name: options.name, dependency: options.dependency };
  const isRetryable = options.isRetryable ?? isRetryableByDefault;
  const countsAsFailure = options.countsAsFailure ?? countsAsFailureByDefault;
  const logger = deps.logger.child({
    component: 'policy',
    policy: options.name,
    dependency: options.dependency,
  });
  const metrics = breakerMetrics(deps.registry, identity);

  // abortOnReturn: false — aborting the per-call signal after every successful call allocates a
  // DOMException each time (measured ~8 % of a like pod's CPU); the wrapped calls here don't
  // listen to the signal after returning, so there is nothing to cancel.
  const timeoutMs = options.timeoutMs;
  const timeoutPolicy = timeout(timeoutMs ?? 1, {
    strategy: TimeoutStrategy.Aggressive,
    abortOnReturn: false,
  });
  const breaker = circuitBreaker(
    handleWhen((err) => !(err instanceof OperationAbortedError) && countsAsFailure(err)),
    {
      halfOpenAfter: options.breaker.halfOpenAfterMs,
      breaker: new ConsecutiveBreaker(options.breaker.consecutiveFailures),
    },
  );
  const retryPolicy: RetryPolicy | null =
    options.retry === false
      ? null
      : retry(
          handleWhen(
            (err) =>
              !isBrokenCircuitError(err) && !(err instanceof OperationAbortedError) && isRetryable(err),
          ),
          {
            maxAttempts: options.retry.maxAttempts - 1,
            backoff: new ExponentialBackoff({
              initialDelay: options.retry.initialDelayMs,
              maxDelay: options.retry.maxDelayMs,
            }),
          },
        );

  metrics.setState('closed');
  breaker.onStateChange((circuit) => {
    const state = toBreakerState(circuit);
    metrics.setState(state);
    metrics.transition(state);
    if (state === 'open')
      logger.warn({ state, lastError: describe(breaker.lastFailure) }, 'circuit breaker opened');
    else logger.info({ state }, `circuit breaker ${state}`);
  });

  /** One attempt: the timeout, with cockatiel's cancellation mapped to our typed errors. */
  const attempt = async <T>(
    fn: (signal: AbortSignal) => Promise<T> | T,
    callerSignal?: AbortSignal,
  ): Promise<T> => {
    if (timeoutMs === null) return fn(callerSignal ?? NEVER_ABORTED);
    try {
      return await timeoutPolicy.execute((ctx) => fn(ctx.signal), callerSignal);
    } catch (err) {
      if (!isCancellation(err)) throw err;
      if (callerSignal?.aborted) throw new OperationAbortedError(identity, callerSignal.reason);
      throw new DependencyTimeoutError(identity, timeoutMs, err);
    }
  };

  return {
    name: options.name,
    dependency: options.dependency,
    async execute<T>(fn: (signal: AbortSignal) => Promise<T> | T, signal?: AbortSignal): Promise<T> {
      if (signal?.aborted) throw new OperationAbortedError(identity, signal.reason);
      const guarded = (s?: AbortSignal) => breaker.execute(() => attempt(fn, signal), s);
      try {
        return retryPolicy
          ? await retryPolicy.execute((ctx) => guarded(ctx.signal), signal)
          : await guarded(signal);
      } catch (err) {
        if (isBrokenCircuitError(err))
          throw new BreakerOpenError(identity, options.breaker.halfOpenAfterMs, err);
        if (isCancellation(err)) throw new OperationAbortedError(identity, signal?.reason ?? err);
        throw err;
      }
    },
    breakerState: () => toBreakerState(breaker.state),
    onStateChange(listener) {
      return breaker.onStateChange((circuit) => {
        try {
          listener(toBreakerState(circuit));
        } catch (err) {
          logger.error({ err }, 'breaker state listener threw');
        }
      });
    },
  };
}

/**
 * cockatiel's own `isTaskCancelledError` (3.2.1) tests the wrong marker (`isBulkheadRejectedError`)
 * and is always false for a TaskCancelledError, so test the right marker here.
 */
function isCancellation(err: unknown): boolean {
  return err instanceof Error && 'isTaskCancelledError' in err;
}

function toBreakerState(circuit: CircuitState): BreakerState {
  switch (circuit) {
    case CircuitState.Closed:
      return 'closed';
    case CircuitState.HalfOpen:
      return 'half-open';
    default:
      return 'open'; // Open and Isolated (held open by hand)
  }
}

/** The signal handed to calls without a timeout layer and without a caller signal. */
const NEVER_ABORTED = new AbortController().signal;

function describe(failure: { error: Error } | { value: unknown } | undefined): string | undefined {
  if (failure === undefined) return undefined;
  return 'error' in failure ? failure.error.message : 'rejected result';
}

function validate(options: PolicyOptions): void {
  const positive: [string, number][] = [
    ...(options.timeoutMs === null ? [] : [['timeoutMs', options.timeoutMs] as [string, number]]),
    ['breaker.consecutiveFailures', options.breaker.consecutiveFailures],
    ['breaker.halfOpenAfterMs', options.breaker.halfOpenAfterMs],
  ];
  if (options.retry !== false) {
    positive.push(
      ['retry.maxAttempts', options.retry.maxAttempts],
      ['retry.initialDelayMs', options.retry.initialDelayMs],
      ['retry.maxDelayMs', options.retry.maxDelayMs],
    );
  }
  for (const [field, value] of positive) {
    if (!Number.isInteger(value) || value < 1) {
      throw new RangeError(`Policy ${options.name}: ${field} must be a positive integer, got ${value}`);
    }
  }
  if (options.retry !== false && options.retry.maxDelayMs < options.retry.initialDelayMs) {
    throw new RangeError(`Policy ${options.name}: retry.maxDelayMs must be ≥ retry.initialDelayMs`);
  }
}
