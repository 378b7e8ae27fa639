import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { forbidden, unauthorized } from '@hyperscale/platform';
import type { LikeStore } from '../like-store.js';
import { rewarmSchema, type RewarmBody } from '../schemas/admin.js';

/**
 * Compares two secrets in constant time. Both sides are hashed first so neither the length nor
 * the position of the first differing byte leaks through timing.
 */
export function sameSecret(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/** Operator routes, guarded by `x-admin-token` (not by user tokens). */
export async function adminRoutes(
  app: FastifyInstance,
  options: { store: LikeStore; adminToken: string },
): Promise<void> {
  app.addHook('onRequest', async (request) => {
    const header = request.headers['x-admin-token'];
    const token = Array.isArray(header) ? header[0] : header;
    if (token === undefined || token === '') throw unauthorized('Send the x-admin-token header');
    if (!sameSecret(token, options.adminToken))
      throw forbidden('The admin token is not valid', 'headers.x-admin-token');
  });

  app.post<{ Body: RewarmBody }>(
    '/admin/v1/likes::rewarm',
    {
      schema: rewarmSchema,
      config: { auth: false },
      // No body at all means "everything", like `{}`.
      preValidation: async (request) => {
        request.body ??= {};
      },
    },
    async (request) => options.store.rewarm(request.body.postIds),
  );
}
