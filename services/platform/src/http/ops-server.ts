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
}): FastifyInstance {
  const app = Fastify({
    loggerInstance: deps.logger.child({ component: 'ops' }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    // Closing cuts every connection: a scrape in progress is worth nothing once the process goes,
    // and a connection held open without a request (a TCP probe, a stalled scraper) held the
    // shutdown until its timeout.
    forceCloseConnections: true,
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
