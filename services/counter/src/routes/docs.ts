import type { FastifyInstance } from 'fastify';
import swaggerUi from '@fastify/swagger-ui';
import { documentHeaders } from '@hyperscale/platform';

/**
 * Public API documentation: the OpenAPI document generated from the route schemas at
 * `/openapi.json`, and Swagger UI at `/docs`. The UI's page and assets get helmet's document
 * headers (API responses carry the short API set); the page loads only same-origin scripts and
 * styles, so helmet's default CSP needs no exception.
 */
export async function docsRoutes(app: FastifyInstance): Promise<void> {
  app.get('/openapi.json', { schema: { hide: true }, config: { auth: false } }, async () => app.swagger());
  await app.register(swaggerUi, {
    routePrefix: '/docs',
    uiConfig: { deepLinking: false },
    uiHooks: { onRequest: documentHeaders },
  });
}
