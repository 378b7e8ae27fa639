/**
 * The counter service's "app floor": the real counter app (platform base app, security headers,
 * metrics, rate limits, JWT auth, schema validation, problem+json, the same routes) with its domain
 * replaced by constant answers — no Redis, Kafka or MySQL. Measured next to the bare floor, it
 * tells how much of a scenario's cost is the HTTP stack every request pays and how much is the
 * counter work itself.
 */
import { buildApp, type CounterAppDeps } from '@hyperscale/counter/app';
import { TokenVerifier, createLogger } from '@hyperscale/platform';
import { Registry } from 'prom-client';

type Store = NonNullable<CounterAppDeps['store']>;

/** Answers like the store without storing anything. */
const constantStore: Pick<Store, 'add' | 'read' | 'ready' | 'close'> = {
  add: async (name) => ({ name, value: 1, path: 'redis' }),
  read: async (names) => names.map((name) => ({ name, value: 1 })),
  ready: () => true,
  close: () => undefined,
};
const unused = { redisBreaker: { consecutiveFailures: 5, halfOpenAfterMs: 1_000 } };

const app = await buildApp({
  settings: {
    bodyLimitBytes: 65_536,
    requestTimeoutMs: 10_000,
    // As the bench runs the service: limits counted, never reached.
    rateLimits: { perIp: 100_000_000, perUser: 100_000_000, windowMs: 60_000, syncMs: 100 },
    presence: { windowMs: 60_000 },
    uniques: { topic: 'unused', writerGroupId: 'unused', retentionDays: 1, warmWaitMs: 1, kafkaTimeoutMs: 1 },
    store: {
      topic: 'unused',
      writerGroupId: 'unused',
      warmWaitMs: 1,
      cacheTtlMs: 1,
      degradedTtlMs: 1,
      kafkaTimeoutMs: 1,
      kafkaBreaker: unused.redisBreaker,
      ...unused,
    },
  },
  logger: createLogger({ service: 'counter-app-floor', level: 'warn' }),
  registry: new Registry(),
  shards: [],
  slotMaps: { current: () => undefined },
  // Never called: every route goes to the constant store.
  router: {} as CounterAppDeps['router'],
  producer: { send: async () => ({}) },
  highWatermarks: async () => [],
  verifier: new TokenVerifier({ hs256Secret: process.env['JWT_HS256_SECRET'] ?? '' }),
  store: constantStore as Store,
});
await app.listen({ host: '127.0.0.1', port: Number(process.env['PORT'] ?? 0) });
process.stdout.write('ready\n');
process.once('SIGTERM', () => void app.close().then(() => process.exit(0)));
