import cors from '@fastify/cors';
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
import { mapLikeError } from './errors.js';
import { LikeStore, type EventSink, type LikeStoreOptions } from './like-store.js';
import { adminRoutes } from './routes/admin.js';
import { compatRoutes } from './routes/compat.js';
import { docsRoutes } from './routes/docs.js';
import { likeRoutes } from './routes/likes.js';

/** HTTP-level settings of the app (a subset of LikeConfig, so tests can pass literals). */
export interface LikeAppSettings {
  bodyLimitBytes: number;
  requestTimeoutMs: number;
  adminToken: string;
  devMode: boolean;
  /** Requests per IP / per user and window (0 disables one); counts shared through Redis. */
  rateLimits: RateLimitSettings;
  /** Allowed CORS origins; none = no CORS headers at all. */
  corsOrigins: readonly string[];
  store: LikeStoreOptions;
}

/** Everything {@link buildApp} needs; clients are created (and closed) by the caller. */
export interface LikeAppDeps {
  settings: LikeAppSettings;
  logger: Logger;
  registry: Registry;
  shards: readonly RedisShardClient[];
  router: MysqlRouter;
  producer: EventSink;
  highWatermarks: HighWatermarkSource;
  verifier: TokenVerifier;
  /**
   * Redis for the rate-limit counters (a dedicated connection with a short command timeout is
   * best). Without it the counters are per process.
   */
  rateLimitRedis?: Redis;
  /** A store built by the caller (tests); otherwise one is built here and closed with the app. */
  store?: LikeStore;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The like domain behind the routes. */
    likeStore: LikeStore;
  }
}

/**
 * Builds the like API (not listening): platform base app (request ids, helmet, RED metrics,
 * problem+json), OpenAPI + Swagger UI, rate limits per IP (before auth) and per user (after),
 * optional CORS allowlist, bearer auth on `/v1` and `/api`, the admin route with its own token.
 */
export async function buildApp(deps: LikeAppDeps): Promise<FastifyInstance> {
  const { settings } = deps;
  const app = await createBaseApp({
    logger: deps.logger,
    registry: deps.registry,
    bodyLimitBytes: settings.bodyLimitBytes,
    requestTimeoutMs: settings.requestTimeoutMs,
    mapError: mapLikeError,
  });
  const store =
    deps.store ??
    new LikeStore({
      shards: deps.shards,
      router: deps.router,
      producer: deps.producer,
      highWatermarks: deps.highWatermarks,
      logger: deps.logger,
      registry: deps.registry,
      options: settings.store,
    });
  if (deps.store === undefined) app.addHook('onClose', async () => store.close());
  app.decorate('likeStore', store);

  if (settings.corsOrigins.length > 0) {
    await app.register(cors, {
      origin: [...settings.corsOrigins],
      methods: ['GET', 'POST', 'PUT', 'DELETE'],
      allowedHeaders: ['authorization', 'content-type', 'x-request-id'],
      exposedHeaders: ['x-request-id', 'retry-after', 'x-ratelimit-limit', 'x-ratelimit-remaining'],
      maxAge: 600,
    });
  }

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Hyperscale like API',
        version: '1.0.0',
        description:
          'Likes with a Redis fast path, Kafka durability and a MySQL fallback. Errors are RFC 9457 problem+json.',
      },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
          adminToken: { type: 'apiKey', in: 'header', name: 'x-admin-token' },
        },
      },
    },
  });

  const limitUsers = installRateLimits(app, {
    limits: settings.rateLimits,
    prefix: 'hs:like:rl:',
    redis: deps.rateLimitRedis,
    logger: deps.logger,
    registry: deps.registry,
  });

  await app.register(docsRoutes);
  await app.register(adminRoutes, { store, adminToken: settings.adminToken });
  await app.register(async (api) => {
    installAuth(api, deps.verifier);
    limitUsers(api);
    await api.register(likeRoutes, { store });
    await api.register(compatRoutes, { store, devMode: settings.devMode });
  });
  return app;
}
