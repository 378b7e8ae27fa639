/**
 * Base class of every error this module raises, so callers can catch "anything Kafka" with one
 * `instanceof` and still branch on the concrete class (or on `code`) where the reaction differs.
 */
export class KafkaError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'KafkaError';
    this.code = code;
  }
}

/** Why a produce did not get an acknowledgment; see {@link KafkaUnavailableError}. */
export type KafkaUnavailableReason = 'timeout' | 'send-failed' | 'connect-failed' | 'closed';

/**
 * Kafka did not acknowledge: the broker is down or unreachable, the acknowledgment did not arrive in
 * time, or the producer was closed. This is the signal for "use the synchronous fallback" in request
 * paths — but only when `maybeWritten` is false: then the message never left this process (it
 * expired in the queue, the producer could not connect, or it was closed first). When it is true the
 * message was handed to the broker and may have been appended (a lost acknowledgment), or may still
 * be; a fallback that applied it again would count it twice. `settled` resolves once the client
 * library has given up on that request (it can no longer retry it).
 */
export class KafkaUnavailableError extends KafkaError {
  readonly reason: KafkaUnavailableReason;
  readonly maybeWritten: boolean;
  readonly settled: Promise<void>;

  constructor(
    reason: KafkaUnavailableReason,
    message: string,
    options?: { cause?: unknown; maybeWritten?: boolean; settled?: Promise<void> },
  ) {
    super('KAFKA_UNAVAILABLE', message, options);
    this.name = 'KafkaUnavailableError';
    this.reason = reason;
    // Unknown is the safe default: it never lets a caller apply a message twice.
    this.maybeWritten = options?.maybeWritten ?? true;
    this.settled = options?.settled ?? Promise.resolve();
  }
}

/**
 * The producer already holds its maximum of queued + in-flight messages. Raised at once, before the
 * message is queued, so the message was certainly NOT written; shed load or fall back.
 */
export class KafkaBackpressureError extends KafkaError {
  readonly limit: number;

  constructor(limit: number) {
    super('KAFKA_BACKPRESSURE', `Kafka producer queue is full (${limit} messages queued or in flight)`);
    this.name = 'KafkaBackpressureError';
    this.limit = limit;
  }
}

/** An admin operation (create/delete topics) did not finish in its time budget or failed. */
export class KafkaAdminError extends KafkaError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('KAFKA_ADMIN', message, options);
    this.name = 'KafkaAdminError';
  }
}

/**
 * Thrown by a {@link BatchHandler} to say "this failure is not the messages' fault" (the database is
 * down, a dependency times out). The consumer then never dead-letters the messages: it pauses the
 * partition and re-delivers them later, however long the outage lasts.
 */
export class TransientHandlerError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TransientHandlerError';
  }
}

/** Renders an unknown thrown value as a one-line message (for logs and DLQ headers). */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  if (typeof err === 'string') return err;
  try {
    return JSON.stringify(err) ?? String(err);
  } catch {
    return String(err);
  }
}
