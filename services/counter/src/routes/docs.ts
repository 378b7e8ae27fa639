import type { FastifyInstance } from 'fastify';
import swaggerUi from '@fastify/swagger-ui';

/**
 * Public API documentation: the OpenAPI document generated from the route schemas at
 * `/openapi.json`, and Swagger UI at `/docs`. Swagger UI's page loads only same-origin scripts and
 * styles, so the global helmet CSP needs no exception.
 */
export async function docsRoutes(app: FastifyInstance): Promise<void> {
  app.get('/openapi.json', { schema: { hide: true }, config: { auth: false } }, async () => app.swagger());
  await app.register(swaggerUi, { routePrefix: '/docs', uiConfig: { deepLinking: false } });
}
