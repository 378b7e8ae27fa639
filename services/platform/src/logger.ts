import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { LogController, type FastifyBaseLogger } from 'fastify';
import {
  pino,
  type Bindings,
  type ChildLoggerOptions,
  type DestinationStream,
  type Logger,
  type LoggerOptions,
} from 'pino';

export type { Logger } from 'pino';

/** Paths whose values never reach a log line, whatever the log level. */
export const REDACTED_PATHS: readonly string[] = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-admin-token"]',
  'res.headers["set-cookie"]',
  '*.password',
  '*.secret',
  '*.token',
  '*.jwtSecret',
  '*.adminToken',
  'password',
  'secret',
  'token',
];

export interface LoggerSettings {
  /** Service name, added to every line as `service`. */
  service: string;
  level?: LoggerOptions['level'];
  /** Where lines go; stdout by default. Tests pass a stream to read what was logged. */
  destination?: DestinationStream;
}

/**
 * Creates the process's JSON logger: ISO timestamps, `service` on every line, secrets redacted
 * (Authorization headers, cookies, any `password`/`secret`/`token` field). One logger per process;
 * children carry request ids and component names.
 */
export function createLogger(settings: LoggerSettings): Logger {
  const options: LoggerOptions = {
    level: settings.level ?? 'info',
    base: { service: settings.service },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: [...REDACTED_PATHS], censor: '[redacted]' },
    formatters: { level: (label) => ({ level: label }) },
  };
  return settings.destination ? pino(options, settings.destination) : pino(options);
}

const REQUEST_ID = /^[A-Za-z0-9_.:-]{1,128}$/;

/**
 * Request id for a Fastify request: the caller's `x-request-id` when it is a sane token (so a trace
 * can be followed across services), otherwise a fresh UUID. Never trusts arbitrary header content
 * into logs.
 */
export function requestIdFor(request: IncomingMessage): string {
  const header = request.headers['x-request-id'];
  const candidate = Array.isArray(header) ? header[0] : header;
  return candidate !== undefined && REQUEST_ID.test(candidate) ? candidate : randomUUID();
}

type LogMethod = (...args: unknown[]) => void;

/**
 * A request's logger that builds its pino child (request id bindings, serialised and redacted by
 * pino) only when something is logged. Fastify makes one per request, and on a path serving
 * thousands of requests a second that logs nothing, the children cost ~4 % of the CPU.
 */
class LazyChildLogger {
  private made: Logger | undefined;

  constructor(
    private readonly parent: Logger,
    private readonly bindings: Bindings,
    private readonly options: ChildLoggerOptions,
  ) {}

  private get real(): Logger {
    this.made ??= this.parent.child(this.bindings, this.options);
    return this.made;
  }

  get level(): string {
    return this.made?.level ?? this.options.level ?? this.parent.level;
  }
  set level(level: string) {
    this.real.level = level;
  }

  fatal(...args: unknown[]): void {
    this.log('fatal', args);
  }
  error(...args: unknown[]): void {
    this.log('error', args);
  }
  warn(...args: unknown[]): void {
    this.log('warn', args);
  }
  info(...args: unknown[]): void {
    this.log('info', args);
  }
  debug(...args: unknown[]): void {
    this.log('debug', args);
  }
  trace(...args: unknown[]): void {
    this.log('trace', args);
  }
  silent(): void {}

  child(bindings: Bindings, options?: ChildLoggerOptions): Logger {
    return this.real.child(bindings, options);
  }

  private log(level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace', args: unknown[]): void {
    const real = this.real;
    (real[level] as LogMethod).apply(real, args);
  }
}

/**
 * Fastify server options that wire the platform logger and request ids. Per-request access lines
 * are off unless `logRequests` is set: on a path serving thousands of requests a second they cost
 * more than the work itself, and the RED metrics already count every request. Errors are always
 * logged with the request id.
 */
export function fastifyLoggingOptions(logger: Logger, logRequests = false) {
  return {
    // pino's Logger is a FastifyBaseLogger; widening keeps FastifyInstance at its default type.
    loggerInstance: logger as FastifyBaseLogger,
    genReqId: requestIdFor,
    childLoggerFactory: (parent: FastifyBaseLogger, bindings: Bindings, options: ChildLoggerOptions) =>
      new LazyChildLogger(parent as Logger, bindings, options) as unknown as FastifyBaseLogger,
    logController: new LogController({ requestIdLogLabel: 'reqId', disableRequestLogging: !logRequests }),
  };
}
