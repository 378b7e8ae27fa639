import { HttpProblem } from '../http/problem.js';

/** Identifies the policy that produced a resilience error: which dependency, which instance of it. */
export interface PolicyIdentity {
  /** The policy's name, e.g. `redis:shard-1`. */
  name: string;
  /** The kind of dependency, e.g. `redis`, `mysql`, `kafka`. */
  dependency: string;
}

/**
 * A dependency could not serve the call: it is a 503 with `Retry-After`, never a 500. Domain code
 * catches it (`instanceof DependencyUnavailableError`) to take a fallback path (e.g. likes served
 * from MySQL while a Redis shard's breaker is open); when nobody catches it, the platform error
 * handler renders it as problem+json because it is an `HttpProblem`. The detail names the
 * dependency kind only, never hosts or ports.
 */
export class DependencyUnavailableError extends HttpProblem {
  readonly policy: string;
  readonly dependency: string;

  constructor(
    identity: PolicyIdentity,
    init: { slug: string; title: string; detail: string; retryAfterSeconds: number; cause?: unknown },
  ) {
    super({ status: 503, ...init });
    this.name = 'DependencyUnavailableError';
    this.policy = identity.name;
    this.dependency = identity.dependency;
  }
}

/**
 * The circuit breaker of `policy` is open (or half-open with its probe failing): the call was
 * rejected without touching the dependency. `retryAfterSeconds` is the breaker's half-open delay
 * rounded up, the earliest moment a retry could reach the dependency again. Mapped from cockatiel's
 * `BrokenCircuitError` and `IsolatedCircuitError`.
 */
export class BreakerOpenError extends DependencyUnavailableError {
  constructor(identity: PolicyIdentity, halfOpenAfterMs: number, cause?: unknown) {
    super(identity, {
      slug: 'dependency-unavailable',
      title: 'Service Unavailable',
      detail: `The ${identity.dependency} dependency is unavailable (circuit open); retry later`,
      retryAfterSeconds: Math.max(1, Math.ceil(halfOpenAfterMs / 1000)),
      cause,
    });
    this.name = 'BreakerOpenError';
  }
}

/**
 * One attempt of a call to `policy` exceeded its `timeoutMs`. The attempt's promise was abandoned,
 * not necessarily its effect: a write that timed out may still be applied by the server later, so
 * state-changing calls must be idempotent (request id) before they are retried. Mapped from
 * cockatiel's `TaskCancelledError` when the caller did not cancel.
 */
export class DependencyTimeoutError extends DependencyUnavailableError {
  readonly timeoutMs: number;

  constructor(identity: PolicyIdentity, timeoutMs: number, cause?: unknown) {
    super(identity, {
      slug: 'dependency-timeout',
      title: 'Service Unavailable',
      detail: `The ${identity.dependency} dependency did not answer within ${timeoutMs} ms; retry later`,
      retryAfterSeconds: 1,
      cause,
    });
    this.name = 'DependencyTimeoutError';
    this.timeoutMs = timeoutMs;
  }
}

/**
 * The caller's own `AbortSignal` fired (e.g. the HTTP client went away or a parent deadline
 * passed). Not a dependency failure: it neither counts toward the breaker nor is retried, and there
 * is nobody left to send a 503 to. `cause` is the signal's reason.
 */
export class OperationAbortedError extends Error {
  readonly policy: string;
  readonly dependency: string;

  constructor(identity: PolicyIdentity, cause?: unknown) {
    super(`Call through policy ${identity.name} was aborted by the caller`, { cause });
    this.name = 'OperationAbortedError';
    this.policy = identity.name;
    this.dependency = identity.dependency;
  }
}

/** True for every error that means "the dependency is unavailable now, answer 503 / fall back". */
export function isDependencyUnavailable(err: unknown): err is DependencyUnavailableError {
  return err instanceof DependencyUnavailableError;
}
