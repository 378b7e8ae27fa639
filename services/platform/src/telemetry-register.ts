/**
 * Entry point for `node --import @hyperscale/platform/telemetry`: starts tracing from the
 * environment (`OTEL_EXPORTER_OTLP_ENDPOINT`, `SERVICE_NAME`, `OTEL_TRACES_SAMPLER_ARG`) before the service's own modules load,
 * and flushes spans when the process exits. A no-op when the endpoint is unset.
 */
import { samplingRatio, startTelemetry } from './telemetry.js';

const telemetry = startTelemetry({
  serviceName: process.env['SERVICE_NAME'] ?? 'hyperscale',
  otlpEndpoint: process.env['OTEL_EXPORTER_OTLP_ENDPOINT'],
  samplingRatio: samplingRatio(process.env['OTEL_TRACES_SAMPLER_ARG']),
});

if (telemetry.enabled) {
  // The service's graceful shutdown ends with process.exit; flush spans on the way out.
  process.once('beforeExit', () => void telemetry.shutdown());
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.prependListener(signal, () => void telemetry.shutdown());
  }
}
