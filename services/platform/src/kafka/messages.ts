import type { IHeaders, KafkaMessage } from 'kafkajs';

/**
 * A consumed message with key, value and headers decoded as UTF-8 (Hyperscale events are JSON).
 * `headers` keeps the LAST value of a header that occurs more than once.
 */
export interface DecodedMessage {
  topic: string;
  partition: number;
  offset: string;
  /** Broker or producer timestamp, epoch milliseconds as a string (kafkajs' representation). */
  timestamp: string;
  key: string | null;
  value: string | null;
  headers: Record<string, string>;
}

/** Decodes kafkajs header values (Buffer, string, or arrays of them) to strings, last value wins. */
export function decodeHeaders(headers: IHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (headers === undefined) return out;
  for (const [name, raw] of Object.entries(headers)) {
    const value = Array.isArray(raw) ? raw[raw.length - 1] : raw;
    if (value === undefined) continue;
    out[name] = typeof value === 'string' ? value : value.toString('utf8');
  }
  return out;
}

/** Turns a kafkajs message into a {@link DecodedMessage}. */
export function decodeMessage(topic: string, partition: number, message: KafkaMessage): DecodedMessage {
  return {
    topic,
    partition,
    offset: message.offset,
    timestamp: message.timestamp,
    key: message.key === null ? null : message.key.toString('utf8'),
    value: message.value === null ? null : message.value.toString('utf8'),
    headers: decodeHeaders(message.headers),
  };
}

/** Names of the headers a dead-lettered message carries, on top of its original headers. */
export const DLQ_HEADERS = {
  topic: 'x-dlq-original-topic',
  partition: 'x-dlq-original-partition',
  offset: 'x-dlq-original-offset',
  error: 'x-dlq-error',
  attempts: 'x-dlq-attempts',
  failedAt: 'x-dlq-failed-at',
  consumerGroup: 'x-dlq-consumer-group',
} as const;

/** Longest error text stored in a DLQ header; stack traces and SQL dumps are truncated to this. */
export const DLQ_ERROR_MAX_CHARS = 1000;

/** Name of the dead-letter topic of `topic`. */
export function dlqTopicFor(topic: string, suffix = '.dlq'): string {
  return `${topic}${suffix}`;
}

/**
 * Headers of the dead-letter copy of a message: its original raw headers (so tracing/eventId survive)
 * overwritten by where it came from, why it failed (truncated to {@link DLQ_ERROR_MAX_CHARS}) and
 * after how many handler attempts — enough to find, understand and replay it.
 */
export function buildDlqHeaders(input: {
  original: IHeaders | undefined;
  topic: string;
  partition: number;
  offset: string;
  error: string;
  attempts: number;
  groupId: string;
  failedAt: Date;
}): IHeaders {
  const error =
    input.error.length > DLQ_ERROR_MAX_CHARS
      ? `${input.error.slice(0, DLQ_ERROR_MAX_CHARS - 1)}…`
      : input.error;
  return {
    ...input.original,
    [DLQ_HEADERS.topic]: input.topic,
    [DLQ_HEADERS.partition]: String(input.partition),
    [DLQ_HEADERS.offset]: input.offset,
    [DLQ_HEADERS.error]: error,
    [DLQ_HEADERS.attempts]: String(input.attempts),
    [DLQ_HEADERS.failedAt]: input.failedAt.toISOString(),
    [DLQ_HEADERS.consumerGroup]: input.groupId,
  };
}
