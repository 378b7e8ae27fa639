import { logLevel as KafkaLogLevel } from 'kafkajs';
import type { LogEntry, logCreator } from 'kafkajs';
import type { Logger } from 'pino';

/** The pino method a kafkajs log level is written with; `null` for kafkajs' NOTHING. */
export type PinoMethod = 'error' | 'warn' | 'info' | 'debug';

/** Maps a kafkajs level to the pino method that writes it (unknown levels are treated as debug). */
export function pinoMethodFor(level: KafkaLogLevel): PinoMethod | null {
  switch (level) {
    case KafkaLogLevel.NOTHING:
      return null;
    case KafkaLogLevel.ERROR:
      return 'error';
    case KafkaLogLevel.WARN:
      return 'warn';
    case KafkaLogLevel.INFO:
      return 'info';
    default:
      return 'debug';
  }
}

/**
 * The kafkajs level that lets through exactly what the pino logger would print, so kafkajs does not
 * format debug entries that pino then drops. pino `trace`/`debug` → DEBUG, `info` → INFO,
 * `warn` → WARN, `error`/`fatal` → ERROR, `silent` → NOTHING. Custom levels fall between by value.
 */
export function kafkaLevelFor(pinoLevelValue: number): KafkaLogLevel {
  if (!Number.isFinite(pinoLevelValue)) return KafkaLogLevel.NOTHING; // pino 'silent' is Infinity
  if (pinoLevelValue <= 20) return KafkaLogLevel.DEBUG;
  if (pinoLevelValue <= 30) return KafkaLogLevel.INFO;
  if (pinoLevelValue <= 40) return KafkaLogLevel.WARN;
  return KafkaLogLevel.ERROR;
}

/**
 * The structured fields of a kafkajs entry, ready to be a pino merge object: kafkajs' own
 * `timestamp`/`message`/`logger` are dropped (pino adds its own) and fields whose names pino reserves
 * (`level`, `msg`, `time`) are prefixed with `kafka_` so they cannot corrupt the output line.
 */
export function entryFields(entry: LogEntry): Record<string, unknown> {
  const fields: Record<string, unknown> = { kafkaNamespace: entry.namespace };
  for (const [key, value] of Object.entries(entry.log)) {
    if (key === 'timestamp' || key === 'message' || key === 'logger') continue;
    if (key === 'level' || key === 'msg' || key === 'time') fields[`kafka_${key}`] = value;
    else fields[key] = value as unknown;
  }
  return fields;
}

/**
 * A kafkajs `logCreator` writing every kafkajs entry to `logger` (a `component: kafkajs` child) at the
 * corresponding pino level. kafkajs filters by the level it is configured with before calling it,
 * so pair it with {@link kafkaLevelFor}(logger.levelVal).
 */
export function pinoLogCreator(logger: Logger): logCreator {
  const child = logger.child({ component: 'kafkajs' });
  return () => (entry: LogEntry) => {
    const method = pinoMethodFor(entry.level);
    if (method === null) return;
    child[method](entryFields(entry), entry.log.message);
  };
}
