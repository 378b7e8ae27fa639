import { z } from 'zod';

/** One problem found in the environment: the variable's name and what is wrong with it. */
export interface ConfigIssue {
  variable: string;
  message: string;
}

/**
 * Thrown by {@link loadConfig} when the environment does not satisfy the schema. The message names
 * every offending variable, so a pod that fails to start says exactly what to fix.
 */
export class ConfigError extends Error {
  readonly issues: readonly ConfigIssue[];

  constructor(issues: readonly ConfigIssue[]) {
    super(
      `Invalid configuration: ${issues.map((issue) => `${issue.variable}: ${issue.message}`).join('; ')}`,
    );
    this.name = 'ConfigError';
    this.issues = issues;
  }
}

/** A TCP port number given as a string in the environment. */
export const port = z.coerce.number().int().min(1).max(65_535);

/** A positive whole number of milliseconds. */
export const millis = z.coerce.number().int().positive();

/** A boolean spelled `true|false|1|0|yes|no` (case-insensitive); anything else is an error. */
export const flag = z
  .string()
  .trim()
  .toLowerCase()
  .refine((value) => ['true', 'false', '1', '0', 'yes', 'no'].includes(value), {
    message: 'expected true or false',
  })
  .transform((value) => value === 'true' || value === '1' || value === 'yes');

export interface HostPort {
  host: string;
  port: number;
}

/** Parses `host:port[,host:port...]`; rejects empty lists, missing ports and ports out of range. */
export const hostPortList = z
  .string()
  .trim()
  .min(1, 'expected host:port[,host:port...]')
  .transform((value, ctx): HostPort[] => {
    const result: HostPort[] = [];
    for (const part of value.split(',').map((item) => item.trim())) {
      const match = /^([^:\s]+):(\d{1,5})$/.exec(part);
      const portNumber = match ? Number(match[2]) : NaN;
      if (!match || !match[1] || portNumber < 1 || portNumber > 65_535) {
        ctx.addIssue({ code: 'custom', message: `"${part}" is not host:port` });
        return z.NEVER;
      }
      result.push({ host: match[1], port: portNumber });
    }
    return result;
  });

/** A comma-separated list of non-empty strings. */
export const stringList = z
  .string()
  .trim()
  .min(1)
  .transform((value) =>
    value
      .split(',')
      .map((item) => item.trim())
      .filter((item) => item.length > 0),
  );

/** A URL with one of the given protocols, e.g. `urlWith(['mysql:'])`. */
export function urlWith(protocols: readonly string[]) {
  return z
    .string()
    .trim()
    .refine(
      (value) => {
        try {
          return protocols.includes(new URL(value).protocol);
        } catch {
          return false;
        }
      },
      { message: `expected a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}` },
    );
}

/** Variables every process reads. */
export const processEnv = {
  SERVICE_NAME: z.string().trim().min(1),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  METRICS_HOST: z.string().trim().min(1).default('0.0.0.0'),
  METRICS_PORT: port,
  /** How long readiness reports failure before connections are drained (lets load balancers notice). */
  SHUTDOWN_DELAY_MS: z.coerce.number().int().min(0).default(2_000),
  /** Upper bound for the whole graceful shutdown; past it the process exits with code 1. */
  SHUTDOWN_TIMEOUT_MS: millis.default(15_000),
  OTEL_EXPORTER_OTLP_ENDPOINT: urlWith(['http:', 'https:']).optional(),
  /** Share of requests traced, 0–1 (read by the telemetry preload; validated here too). */
  OTEL_TRACES_SAMPLER_ARG: z.coerce.number().min(0).max(1).optional(),
};

/** Variables of processes that serve HTTP. */
export const httpEnv = {
  HTTP_HOST: z.string().trim().min(1).default('0.0.0.0'),
  HTTP_PORT: port,
  HTTP_BODY_LIMIT_BYTES: z.coerce.number().int().positive().default(65_536),
  HTTP_REQUEST_TIMEOUT_MS: millis.default(10_000),
};

/** Redis shard groups managed by Sentinel (or one direct server for development). */
export const redisEnv = {
  REDIS_SENTINELS: hostPortList.optional(),
  /** Sentinel master names, one per shard group, e.g. `shard-0,shard-1`. */
  REDIS_MASTER_NAMES: stringList.optional(),
  /** A direct server (`host:port`) used instead of Sentinel when REDIS_SENTINELS is unset. */
  REDIS_DIRECT: hostPortList.optional(),
  REDIS_CONNECT_TIMEOUT_MS: millis.default(2_000),
  REDIS_COMMAND_TIMEOUT_MS: millis.default(500),
};

/** MySQL primary + optional replica. */
export const mysqlEnv = {
  MYSQL_PRIMARY_URL: urlWith(['mysql:']),
  MYSQL_REPLICA_URL: urlWith(['mysql:']).optional(),
  MYSQL_CONNECTION_LIMIT: z.coerce.number().int().min(1).max(1_000).default(20),
  MYSQL_CONNECT_TIMEOUT_MS: millis.default(2_000),
  MYSQL_QUERY_TIMEOUT_MS: millis.default(2_000),
  /** End the server session of a timed-out statement (KILL CONNECTION); off only behind a proxy that cannot map it. */
  MYSQL_KILL_TIMED_OUT_SESSIONS: flag.default(true),
  MYSQL_STICKY_WINDOW_MS: z.coerce.number().int().min(0).default(5_000),
  MYSQL_MAX_REPLICA_LAG_MS: millis.default(1_000),
  MYSQL_MIGRATE_ON_START: flag.default(false),
};

/** Kafka brokers and the group-commit producer. */
export const kafkaEnv = {
  KAFKA_BROKERS: hostPortList,
  KAFKA_CLIENT_ID: z.string().trim().min(1).optional(),
  KAFKA_CONNECTION_TIMEOUT_MS: millis.default(3_000),
  KAFKA_REQUEST_TIMEOUT_MS: millis.default(5_000),
  KAFKA_LINGER_MS: z.coerce.number().int().min(0).max(1_000).default(2),
  KAFKA_MAX_BATCH: z.coerce.number().int().min(1).max(100_000).default(1_000),
  KAFKA_SEND_TIMEOUT_MS: millis.default(3_000),
};

type Environment = Readonly<Record<string, string | undefined>>;

/**
 * Validates `env` against `shape` (keys are the variable names) and returns the typed result.
 * Empty strings count as unset, so `FOO=` falls back to the default or is reported as missing.
 * Every problem is collected before throwing, so one start-up names all of them.
 *
 * @throws {ConfigError} naming each missing or malformed variable.
 */
export function loadConfig<Shape extends z.ZodRawShape>(
  shape: Shape,
  env: Environment = process.env,
): z.infer<z.ZodObject<Shape>> {
  const input: Record<string, string> = {};
  for (const key of Object.keys(shape)) {
    const value = env[key];
    if (value !== undefined && value.trim() !== '') input[key] = value;
  }
  const parsed = z.object(shape).safeParse(input);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.map((issue) => ({
    variable: String(issue.path[0] ?? '(environment)'),
    message: issue.code === 'invalid_type' && issue.input === undefined ? 'is required' : issue.message,
  }));
  throw new ConfigError(issues);
}
