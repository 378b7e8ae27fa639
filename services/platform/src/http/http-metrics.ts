import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { LATENCY_BUCKETS } from '../metrics.js';

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
  // A plain number read at scrape time: a Gauge's inc/dec hash their labels on every request.
  let inFlight = 0;
  new Gauge({
    name: 'hyperscale_http_requests_in_flight',
    help: 'HTTP requests being processed',
    registers: [registry],
    collect() {
      this.set(inFlight);
    },
  });

  // Callback-form hooks (no promise per request). The duration is Fastify's own clock
  // (`reply.elapsedTime`, from the request's arrival to the response's end): a start time of our own
  // cost a BigInt and a WeakMap entry per request.
  app.addHook('onRequest', (_request, _reply, done) => {
    inFlight += 1;
    done();
  });
  app.addHook('onResponse', (request, reply, done) => {
    inFlight -= 1;
    const labels = {
      method: request.method,
      route: routeLabel(request),
      status_code: String(reply.statusCode),
    };
    requests.inc(labels);
    duration.observe(labels, reply.elapsedTime / 1_000);
    done();
  });
}
