import { KafkaBackpressureError, KafkaError } from '../kafka/errors.js';
import { isConnectionLevelError, MysqlCommitOutcomeUnknownError } from '../mysql/errors.js';
import { RedisError, RedisReplyError } from '../redis/errors.js';
import { HttpProblem, serviceUnavailable } from './problem.js';

/**
 * The default mapping of the platform's dependency failures to problems: a Redis, Kafka or MySQL
 * outage or timeout that escaped the service's own fallbacks is a 503 with `Retry-After`, never a
 * 500 — the client may retry, and nothing about the dependency leaks into the body. Kafka
 * back-pressure is a 503 too, with a slightly longer pause. Returns undefined for anything else.
 */
export function mapDependencyError(error: unknown): HttpProblem | undefined {
  if (error instanceof HttpProblem) return error;
  if (error instanceof RedisError && !(error instanceof RedisReplyError)) {
    return serviceUnavailable('The cache is unavailable; retry shortly', 1, error);
  }
  if (error instanceof KafkaBackpressureError) {
    return serviceUnavailable('The service is saturated; retry shortly', 2, error);
  }
  if (error instanceof KafkaError)
    return serviceUnavailable('The event log is unavailable; retry shortly', 1, error);
  if (error instanceof MysqlCommitOutcomeUnknownError || isConnectionLevelError(error)) {
    return serviceUnavailable('The database is unavailable; retry shortly', 1, error);
  }
  return undefined;
}
