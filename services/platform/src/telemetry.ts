import { register } from 'node:module';
import { FastifyOtelInstrumentation } from '@fastify/otel';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { IORedisInstrumentation } from '@opentelemetry/instrumentation-ioredis';
import { KafkaJsInstrumentation } from '@opentelemetry/instrumentation-kafkajs';
import { MySQL2Instrumentation } from '@opentelemetry/instrumentation-mysql2';
import { NodeSDK } from '@opentelemetry/sdk-node';

/** Paths served by the ops server; tracing them would only add noise. */
const UNTRACED_PATHS = new Set(['/metrics', '/livez', '/readyz']);

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
    instrumentations: [
      new HttpInstrumentation({
        ignoreIncomingRequestHook: (request) => UNTRACED_PATHS.has((request.url ?? '').split('?')[0] ?? ''),
      }),
      new FastifyOtelInstrumentation({ registerOnInitialization: true }),
      new IORedisInstrumentation({ requireParentSpan: true }),
      new MySQL2Instrumentation(),
      new KafkaJsInstrumentation(),
    ],
  });
  sdk.start();
  return { enabled: true, shutdown: () => sdk.shutdown() };
}
