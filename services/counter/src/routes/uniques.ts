import type { FastifyInstance } from 'fastify';
import { badRequest, forbidden, unauthorized } from '@hyperscale/platform';
import {
  uniqueCountSchema,
  uniqueEventSchema,
  type UniqueEventBody,
  type UniqueParams,
  type UniqueQuery,
} from '../schemas/uniques.js';
import { parseDay, type UniquesStore } from '../uniques-store.js';

/** `/v1/uniques` routes; events only for the token's own user. */
export async function uniquesRoutes(app: FastifyInstance, options: { uniques: UniquesStore }): Promise<void> {
  const { uniques } = options;
  app.post<{ Params: UniqueParams; Body: UniqueEventBody }>(
    '/v1/uniques/:name/events',
    { schema: uniqueEventSchema },
    async (request) => {
      const caller = request.principal?.userId;
      if (caller === undefined) throw unauthorized();
      if (request.body.userId !== caller) throw forbidden('userId must be the token subject', 'body.userId');
      const at = request.body.at === undefined ? Date.now() : Date.parse(request.body.at);
      if (Number.isNaN(at)) throw badRequest('body.at', 'must be an RFC 3339 date-time');
      const { day } = await uniques.record(request.params.name, caller, at);
      return { name: request.params.name, day };
    },
  );
  app.get<{ Params: UniqueParams; Querystring: UniqueQuery }>(
    '/v1/uniques/:name',
    { schema: uniqueCountSchema },
    async (request) => {
      const { name } = request.params;
      const { day, from, to } = request.query;
      if (day !== undefined) {
        if (from !== undefined || to !== undefined)
          throw badRequest('query.day', 'use either day or from/to');
        if (parseDay(day) === undefined) throw badRequest('query.day', 'must be a calendar day YYYY-MM-DD');
        return { name, day, count: await uniques.exact(name, day), exact: true };
      }
      if (from === undefined) throw badRequest('query.from', 'give day, or from and to');
      if (to === undefined) throw badRequest('query.to', 'give day, or from and to');
      return { name, from, to, count: await uniques.range(name, from, to), exact: false };
    },
  );
}
