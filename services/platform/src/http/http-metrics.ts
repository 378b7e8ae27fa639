import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { LATENCY_BUCKETS } from '../metrics.js';

const startTimes = new WeakMap<FastifyRequest, bigint>();

/**
 * The route label: the route template (`/v1/posts/:postId/like`), never the raw URL, so ids cannot
 * explode the series count. Requests that matched no route share the label `unmatched`.
 */
export function routeLabel(request: FastifyRequest): string {
  return request.routeOptions.url ?? 'unmatched';
}

/**
 * RED metrics for every request of `app`: `hyperscale_http_requests_total`,
 * `hyperscale_http_request_duration_seconds` (labelled method, route, status_code) and
 * `hyperscale_http_requests_in_flight`. Call before routes are registered.
 */
export function installHttpMetrics(app: FastifyInstance, registry: Registry): void {
  const labelNames = ['method', 'route', 'status_code'] as const;
  const requests = new Counter({
    name: 'hyperscale_http_requests_total',
    help: 'HTTP requests completed',
    labelNames,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'hyperscale_http_request_duration_seconds',
    help: 'HTTP request duration from arrival to the last byte of the response',
    labelNames,
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const inFlight = new Gauge({
    name: 'hyperscale_http_requests_in_flight',
    help: 'HTTP requests being processed',
    registers: [registry],
  });

  app.addHook('onRequest', async (request) => {
    startTimes.set(request, process.hrtime.bigint());
    inFlight.inc();
  });
  app.addHook('onResponse', async (request, reply) => {
    const started = startTimes.get(request);
    inFlight.dec();
    if (started === undefined) return;
    const labels = {
      method: request.method,
      route: routeLabel(request),
      status_code: String(reply.statusCode),
    };
    requests.inc(labels);
    duration.observe(labels, Number(process.hrtime.bigint() - started) / 1e9);
  });
}
