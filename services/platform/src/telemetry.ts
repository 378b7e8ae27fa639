import { register } from 'node:module';
import { FastifyOtelInstrumentation } from '@fastify/otel';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { IORedisInstrumentation } from '@opentelemetry/instrumentation-ioredis';
import { KafkaJsInstrumentation } from '@opentelemetry/instrumentation-kafkajs';
import { MySQL2Instrumentation } from '@opentelemetry/instrumentation-mysql2';
import { NodeSDK, tracing } from '@opentelemetry/sdk-node';
import { SpanKind, type Attributes, type Context, type Link } from '@opentelemetry/api';

/** Paths served by the ops server; tracing them would only add noise. */
const UNTRACED_PATHS = new Set(['/metrics', '/livez', '/readyz']);

/**
 * The root sampler: a trace that starts with work someone asked for (an HTTP request served, a
 * Kafka batch polled or a message processed) is kept with probability `ratio`; a trace that would
 * start with a client call the process makes on its own (the replica-lag monitor's queries,
 * migrations, Kubernetes API polls) is dropped. Those are many one-span traces a minute per pod
 * that explain nothing. Children follow their parent (ParentBasedSampler), so a Redis call inside
 * a request is traced exactly when the request is.
 */
export class RequestRootSampler implements tracing.Sampler {
  private readonly byTraceId: tracing.Sampler;

  constructor(private readonly ratio: number) {
    if (!(ratio >= 0 && ratio <= 1))
      throw new RangeError(`sampling ratio must be within [0, 1], got ${ratio}`);
    this.byTraceId = new tracing.TraceIdRatioBasedSampler(ratio);
  }

  shouldSample(
    context: Context,
    traceId: string,
    spanName: string,
    spanKind: SpanKind,
    attributes: Attributes,
    links: Link[],
  ): tracing.SamplingResult {
    if (spanKind === SpanKind.CLIENT && attributes['messaging.system'] === undefined) {
      return { decision: tracing.SamplingDecision.NOT_RECORD };
    }
    return this.byTraceId.shouldSample(context, traceId, spanName, spanKind, attributes, links);
  }

  toString(): string {
    return `RequestRootSampler{ratio=${this.ratio}}`;
  }
}

/**
 * `db.query.text` of a Redis span: the command and its first argument (the key), never the
 * values (user ids, deltas) and never a script body (an EVAL would carry 2 KB of Lua per span).
 * Scripts show their SHA prefix, key count and first key; AUTH and HELLO show nothing but the name.
 */
export function redisStatement(command: string, args: readonly unknown[]): string {
  const name = command.toLowerCase();
  const text = (value: unknown) => (Buffer.isBuffer(value) ? value.toString('utf8') : String(value));
  if (name === 'auth' || name === 'hello') return name;
  if (name === 'eval' || name === 'evalsha') {
    const keys = Number(args[1]);
    const script = name === 'evalsha' ? text(args[0]).slice(0, 12) : '<script>';
    const first = keys > 0 && args[2] !== undefined ? ` ${text(args[2])}` : '';
    return `${name} ${script} ${Number.isInteger(keys) ? keys : '?'} keys${first}`;
  }
  return args[0] === undefined ? name : `${name} ${text(args[0])}`;
}

/** `OTEL_TRACES_SAMPLER_ARG` as the share of requests traced (default 1: every one). */
export function samplingRatio(raw: string | undefined): number {
  if (raw === undefined || raw.trim() === '') return 1;
  const ratio = Number(raw);
  if (!(ratio >= 0 && ratio <= 1)) {
    throw new Error(`OTEL_TRACES_SAMPLER_ARG: expected a share of requests to trace in [0, 1], got "${raw}"`);
  }
  return ratio;
}

export interface Telemetry {
  readonly enabled: boolean;
  /** Flushes buffered spans (bounded by the exporter's timeout) and stops the SDK. */
  shutdown(): Promise<void>;
}

/**
 * Starts OpenTelemetry tracing with OTLP/HTTP (protobuf) export to `otlpEndpoint`, instrumenting
 * http, Fastify, ioredis, mysql2 and kafkajs. Without an endpoint it does nothing and returns a
 * disabled handle: tracing is opt-in per environment.
 *
 * It must run before the instrumented libraries are imported, which is why processes load it with
 * `node --import @hyperscale/platform/telemetry main.js` rather than calling it from `main.ts`.
 */
export function startTelemetry(options: {
  serviceName: string;
  otlpEndpoint?: string | undefined;
  /** Share of request-rooted traces kept, 0–1 (default 1). */
  samplingRatio?: number;
}): Telemetry {
  if (options.otlpEndpoint === undefined || options.otlpEndpoint === '') {
    return { enabled: false, shutdown: async () => undefined };
  }
  // ESM imports are patched through import-in-the-middle's loader hook.
  register('@opentelemetry/instrumentation/hook.mjs', import.meta.url);
  const endpoint = options.otlpEndpoint.replace(/\/+$/, '');
  const sdk = new NodeSDK({
    serviceName: options.serviceName,
    traceExporter: new OTLPTraceExporter({ url: `${endpoint}/v1/traces`, timeoutMillis: 5_000 }),
    sampler: new tracing.ParentBasedSampler({ root: new RequestRootSampler(options.samplingRatio ?? 1) }),
    instrumentations: [
      new HttpInstrumentation({
        ignoreIncomingRequestHook: (request) => UNTRACED_PATHS.has((request.url ?? '').split('?')[0] ?? ''),
      }),
      new FastifyOtelInstrumentation({ registerOnInitialization: true }),
      new IORedisInstrumentation({ requireParentSpan: true, dbStatementSerializer: redisStatement }),
      new MySQL2Instrumentation(),
      new KafkaJsInstrumentation(),
    ],
  });
  sdk.start();
  return { enabled: true, shutdown: () => sdk.shutdown() };
}
