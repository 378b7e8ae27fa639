/**
 * Per-dependency resilience policies (cockatiel 3.2.1): timeout + retry + circuit breaker with
 * metrics, and the typed 503 errors services map or fall back on.
 */
export {
  createPolicy,
  type DependencyPolicy,
  type PolicyBreakerOptions,
  type PolicyDeps,
  type PolicyOptions,
  type PolicyRetryOptions,
  type PolicySubscription,
} from './policy.js';
export {
  BreakerOpenError,
  DependencyTimeoutError,
  DependencyUnavailableError,
  OperationAbortedError,
  isDependencyUnavailable,
  type PolicyIdentity,
} from './errors.js';
export { countsAsFailureByDefault, isRetryableByDefault } from './classify.js';
export { BREAKER_STATE_VALUE, type BreakerState } from './metrics.js';
