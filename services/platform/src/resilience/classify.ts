import { HttpProblem } from '../http/problem.js';
import { DependencyTimeoutError } from './errors.js';

/** Socket-level error codes that say "the network or the server blinked", not "the request is bad". */
const TRANSIENT_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
]);

/**
 * Default "is it worth another attempt" predicate. Conservative on purpose: an error nobody
 * classified is NOT retried, because retrying a write whose effect is unknown is how counters get
 * double-counted. Retried are: attempt timeouts, errors that carry `retryable: true` (the platform's
 * Redis/MySQL/Kafka errors set it where a retry is safe), and transient socket codes. An explicit
 * `retryable: false` always wins.
 */
export function isRetryableByDefault(err: unknown): boolean {
  if (err instanceof DependencyTimeoutError) return true;
  if (typeof err !== 'object' || err === null) return false;
  if ('retryable' in err && typeof err.retryable === 'boolean') return err.retryable;
  return 'code' in err && typeof err.code === 'string' && TRANSIENT_CODES.has(err.code);
}

/**
 * Default "does it count against the dependency" predicate for the breaker: every error except
 * client errors (an `HttpProblem` with a 4xx status, e.g. validation raised inside the call), which
 * say nothing about the dependency's health. Caller cancellations never reach this predicate.
 */
export function countsAsFailureByDefault(err: unknown): boolean {
  return !(err instanceof HttpProblem && err.status < 500);
}
