import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import type { CounterStore } from '../counter-store.js';
import {
  WRITE_SCOPE,
  batchGetSchema,
  decrementSchema,
  getCounterSchema,
  incrementSchema,
  type BatchGetBody,
  type DeltaBody,
  type NameParams,
} from '../schemas/counters.js';

/** `/v1/counters` routes. Writes need the `counters:write` scope; reads any valid token. */
export async function counterRoutes(app: FastifyInstance, options: { store: CounterStore }): Promise<void> {
  const { store } = options;
  const write = { auth: { scopes: [WRITE_SCOPE] } };
  // `{delta}` is optional as a whole: a POST without a body means delta 1.
  const emptyBody = (request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction) => {
    if (request.body === undefined || request.body === null) request.body = {};
    done();
  };

  app.post<{ Params: NameParams; Body: DeltaBody | undefined }>(
    '/v1/counters/:name/increment',
    { schema: incrementSchema, config: write, preValidation: emptyBody },
    async (request) => {
      const outcome = await store.add(request.params.name, request.body?.delta ?? 1);
      return { name: outcome.name, value: outcome.value };
    },
  );

  app.post<{ Params: NameParams; Body: DeltaBody | undefined }>(
    '/v1/counters/:name/decrement',
    { schema: decrementSchema, config: write, preValidation: emptyBody },
    async (request) => {
      const outcome = await store.add(request.params.name, -(request.body?.delta ?? 1));
      return { name: outcome.name, value: outcome.value };
    },
  );

  app.get<{ Params: NameParams }>('/v1/counters/:name', { schema: getCounterSchema }, async (request) => {
    const [value] = await store.read([request.params.name]);
    return value ?? { name: request.params.name, value: 0 };
  });

  app.post<{ Body: BatchGetBody }>('/v1/counters::batchGet', { schema: batchGetSchema }, async (request) => ({
    results: await store.read(request.body.names),
  }));
}
