/**
 * Entry point for `node --import @hyperscale/platform/telemetry`: starts tracing from the
 * environment (`OTEL_EXPORTER_OTLP_ENDPOINT`, `SERVICE_NAME`, `OTEL_TRACES_SAMPLER_ARG`) before the
 * service's own modules load, and flushes spans at the end of the graceful shutdown. A no-op when
 * the endpoint is unset.
 */
import { onFinalFlush } from './telemetry-flush.js';
import { samplingRatio, startTelemetry } from './telemetry.js';

const telemetry = startTelemetry({
  serviceName: process.env['SERVICE_NAME'] ?? 'hyperscale',
  otlpEndpoint: process.env['OTEL_EXPORTER_OTLP_ENDPOINT'],
  samplingRatio: samplingRatio(process.env['OTEL_TRACES_SAMPLER_ARG']),
});

if (telemetry.enabled) {
  // GracefulShutdown flushes at its end, after the last request drained; a process that ends on
  // its own (no signal, empty event loop) flushes here.
  onFinalFlush(() => telemetry.shutdown());
  process.once('beforeExit', () => void telemetry.shutdown());
}
