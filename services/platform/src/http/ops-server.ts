import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Health } from '../health.js';

/**
 * The operations server of a process, on its own port so an Ingress never exposes it:
 * `GET /metrics` (Prometheus text), `GET /livez` (200 while the event loop runs),
 * `GET /readyz` (200 or 503 with each check's result).
 * Returned not listening; `main.ts` calls `listen`.
 */
export function buildOpsServer(deps: {
  registry: Registry;
  health: Health;
  logger: Logger;
  /** A request must arrive whole within this (default 10 s), else 408 and the connection closes. */
  requestTimeoutMs?: number;
}): FastifyInstance {
  const app = Fastify({
    loggerInstance: deps.logger.child({ component: 'ops' }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    // Closing cuts every connection: a scrape in progress is worth nothing once the process goes,
    // and a connection held open without a request (a TCP probe, a stalled scraper) held the
    // shutdown until its timeout.
    forceCloseConnections: true,
    // Without these, Node's defaults kept a connection that sends nothing open 60-90 s.
    requestTimeout: deps.requestTimeoutMs ?? 10_000,
    http: { connectionsCheckingInterval: 1_000 },
  });
  app.get('/metrics', async (_request, reply) => {
    const body = await deps.registry.metrics();
    return reply.type(deps.registry.contentType).send(body);
  });
  app.get('/livez', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    const report = await deps.health.readiness();
    return reply.code(report.ready ? 200 : 503).send(report);
  });
  return app;
}
