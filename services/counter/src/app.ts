import swagger from '@fastify/swagger';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import {
  createBaseApp,
  installAuth,
  installRateLimits,
  type RateLimitSettings,
  type MysqlRouter,
  type RedisShardClient,
  type TokenVerifier,
  type HighWatermarkSource,
} from '@hyperscale/platform';
import {
  CounterStore,
  type CounterStoreOptions,
  type EventSink,
  type SlotMapProvider,
} from './counter-store.js';
import { mapCounterError } from './errors.js';
import { PresenceStore, type PresenceOptions } from './presence-store.js';
import { counterRoutes } from './routes/counters.js';
import { presenceRoutes } from './routes/presence.js';
import { uniquesRoutes } from './routes/uniques.js';
import { UniquesStore, type UniquesOptions } from './uniques-store.js';
import { docsRoutes } from './routes/docs.js';

/** HTTP-level settings (a subset of CounterConfig, so tests can pass literals). */
export interface CounterAppSettings {
  bodyLimitBytes: number;
  requestTimeoutMs: number;
  /** Requests per IP / per user and window (0 disables one); counts shared through Redis. */
  rateLimits: RateLimitSettings;
  store: CounterStoreOptions;
  presence: PresenceOptions;
  uniques: UniquesOptions;
}

/** Everything {@link buildApp} needs; clients are created (and closed) by the caller. */
export interface CounterAppDeps {
  settings: CounterAppSettings;
  logger: Logger;
  registry: Registry;
  shards: readonly RedisShardClient[];
  slotMaps: SlotMapProvider;
  router: MysqlRouter;
  producer: EventSink;
  highWatermarks: HighWatermarkSource;
  verifier: TokenVerifier;
  /** Redis for the rate-limit counters; without it the counters are per process. */
  rateLimitRedis?: Redis;
  /** A store built by the caller (tests); otherwise one is built here and closed with the app. */
  store?: CounterStore;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The counter domain behind the routes. */
    counterStore: CounterStore;
  }
}

/**
 * Builds the counter API (not listening): platform base app (request ids, helmet, RED metrics,
 * problem+json), OpenAPI at /openapi.json + Swagger UI at /docs, rate limits per IP (before auth)
 * and per user (after), bearer auth on `/v1` (writes need scope `counters:write`).
 */
export async function buildApp(deps: CounterAppDeps): Promise<FastifyInstance> {
  const { settings } = deps;
  const app = await createBaseApp({
    logger: deps.logger,
    registry: deps.registry,
    bodyLimitBytes: settings.bodyLimitBytes,
    requestTimeoutMs: settings.requestTimeoutMs,
    mapError: mapCounterError,
    // Names are up to 200 characters; longer ones must reach the schema (400), not the router (414).
    maxParamLength: 1_024,
  });
  const store =
    deps.store ??
    new CounterStore({
      shards: deps.shards,
      slotMaps: deps.slotMaps,
      router: deps.router,
      producer: deps.producer,
      highWatermarks: deps.highWatermarks,
      logger: deps.logger,
      registry: deps.registry,
      options: settings.store,
    });
  if (deps.store === undefined) app.addHook('onClose', async () => store.close());
  app.decorate('counterStore', store);
  const presence = new PresenceStore(
    { counters: store, router: deps.router, logger: deps.logger, registry: deps.registry },
    settings.presence,
  );
  const uniques = new UniquesStore(
    {
      counters: store,
      router: deps.router,
      producer: deps.producer,
      highWatermarks: deps.highWatermarks,
      logger: deps.logger,
      registry: deps.registry,
    },
    settings.uniques,
  );
  app.addHook('onClose', async () => uniques.close());

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Hyperscale counter API',
        version: '1.0.0',
        description:
          'Counters on slot-sharded Redis with Kafka durability, MySQL write-behind and fallback. Errors are RFC 9457 problem+json.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
    },
  });

  const limitUsers = installRateLimits(app, {
    limits: settings.rateLimits,
    prefix: 'hs:counter:rl:',
    redis: deps.rateLimitRedis,
    logger: deps.logger,
    registry: deps.registry,
  });

  await app.register(docsRoutes);
  await app.register(async (api) => {
    installAuth(api, deps.verifier);
    limitUsers(api);
    await api.register(counterRoutes, { store });
    await api.register(presenceRoutes, { presence });
    await api.register(uniquesRoutes, { uniques });
  });
  return app;
}
