import { Kafka } from 'kafkajs';
import type { RetryOptions } from 'kafkajs';
import type { Logger } from 'pino';
import { kafkaLevelFor, pinoLogCreator } from './log-bridge.js';

/** Options of {@link createKafka}. */
export interface CreateKafkaOptions {
  clientId: string;
  /** `host:port` bootstrap list, e.g. `['127.0.0.1:9092']`. Must not be empty. */
  brokers: string[];
  /** TCP connect timeout per broker connection (kafkajs `connectionTimeout`). Default 3000. */
  connectionTimeoutMs?: number;
  /** Timeout of every request to a broker (kafkajs `requestTimeout`, enforced). Default 10000. */
  requestTimeoutMs?: number;
  logger: Logger;
  /** Client-wide retry policy; producers/consumers may narrow it. Default: see {@link DEFAULT_KAFKA_RETRY}. */
  retry?: RetryOptions;
}

/**
 * The client-wide kafkajs retry policy: 5 retries, 100 ms initial backoff doubling up to 2 s — a
 * cluster operation gives up within roughly 5–10 s instead of kafkajs' default 30 s per retry. Code
 * on request paths adds its own deadline on top (see GroupCommitProducer).
 */
export const DEFAULT_KAFKA_RETRY: Readonly<RetryOptions> = {
  retries: 5,
  initialRetryTime: 100,
  maxRetryTime: 2000,
  factor: 0.2,
  multiplier: 2,
};

/**
 * Builds the kafkajs client every Hyperscale process uses: kafkajs logs go to the injected pino
 * logger at the matching level (kafkajs' own level is derived from the logger's so nothing is
 * formatted just to be dropped), every request has a timeout (`enforceRequestTimeout`), and retries
 * are bounded. No connection is made here; producers/consumers/admins connect on demand.
 */
export function createKafka(options: CreateKafkaOptions): Kafka {
  if (options.brokers.length === 0) throw new Error('createKafka: brokers must not be empty');
  return new Kafka({
    clientId: options.clientId,
    brokers: options.brokers,
    connectionTimeout: options.connectionTimeoutMs ?? 3000,
    requestTimeout: options.requestTimeoutMs ?? 10_000,
    enforceRequestTimeout: true,
    retry: { ...DEFAULT_KAFKA_RETRY, ...options.retry },
    logLevel: kafkaLevelFor(options.logger.levelVal),
    logCreator: pinoLogCreator(options.logger),
  });
}
