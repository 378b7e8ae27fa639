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
