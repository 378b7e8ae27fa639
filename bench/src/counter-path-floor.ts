/**
 * The counter's "path floor": the least work any design that keeps DESIGN.md's promises must do for
 * an increment, with no auth, validation, idempotency, pending entries, acks, writer or MySQL —
 * a bare Fastify route that adds the delta in the shard's Redis master (one auto-pipelined
 * INCRBY) and awaits its event in Kafka (the platform's group-commit producer, same linger and
 * record shape as the service), then answers `{name, value}`; and for a read, one GET. Its ratio
 * against the bare floor bounds what `counter-incr-spread` and `counter-read` can reach on this
 * machine.
 */
import { randomUUID } from 'node:crypto';
import {
  GroupCommitProducer,
  createKafka,
  createLogger,
  createRedisClient,
  ensureTopics,
  hostPortList,
  waitForRedisReady,
} from '@hyperscale/platform';
import calculateSlot from 'cluster-key-slot';
import Fastify from 'fastify';
import { Registry } from 'prom-client';

/** Kept apart from the writer's topics: nothing consumes it. */
export const PATH_FLOOR_TOPIC = 'bench.path-floor.v1';

const env = (name: string): string => {
  const value = process.env[name];
  if (value === undefined || value === '') throw new Error(`${name} is required`);
  return value;
};
const logger = createLogger({ service: 'counter-path-floor', level: 'warn' });
const sentinels = hostPortList.parse(env('REDIS_SENTINELS'));
// Both groups the bench's slot map uses, a name on one of them as the slot map would put it.
const shards = env('REDIS_MASTER_NAMES')
  .split(',')
  .slice(0, 2)
  .map((masterName) => createRedisClient({ sentinels, masterName, logger }));
const shardOf = (name: string) => {
  const shard = shards[calculateSlot(name) % shards.length];
  if (shard === undefined) throw new Error('no Redis shard');
  return shard;
};
await Promise.all(shards.map((shard) => waitForRedisReady(shard, 10_000)));
const kafka = createKafka({
  clientId: 'counter-path-floor',
  brokers: env('KAFKA_BROKERS').split(','),
  logger,
});
await ensureTopics(kafka, [{ topic: PATH_FLOOR_TOPIC, numPartitions: 6 }], 30_000);
const producer = new GroupCommitProducer({ kafka, logger, registry: new Registry() });
await producer.connect();

const app = Fastify({ logger: false });
app.post<{ Params: { name: string }; Body: { delta?: number } }>(
  '/v1/counters/:name/increment',
  async (request) => {
    const { name } = request.params;
    const delta = request.body.delta ?? 1;
    const [value] = await Promise.all([
      shardOf(name).incrby(`pf:{${name}}`, delta),
      producer.send(PATH_FLOOR_TOPIC, {
        key: name,
        value: JSON.stringify({ eventId: randomUUID(), name, delta, at: new Date().toISOString() }),
      }),
    ]);
    return { name, value };
  },
);
// A read: one auto-pipelined GET from the name's shard.
app.get<{ Params: { name: string } }>('/v1/counters/:name', async (request) => {
  const { name } = request.params;
  return { name, value: Number((await shardOf(name).get(`pf:{${name}}`)) ?? 0) };
});
app.get('/ready', async () => ({ ok: true }));
await app.listen({ host: '127.0.0.1', port: Number(process.env['PORT'] ?? 0) });
process.stdout.write('ready\n');
process.once('SIGTERM', () => {
  void (async () => {
    await app.close();
    await producer.close();
    // The floor's keys are of no use after the run.
    for (const shard of shards) {
      for await (const keys of shard.scanStream({ match: 'pf:*', count: 1_000 }) as AsyncIterable<string[]>)
        if (keys.length > 0) await shard.unlink(...keys);
      shard.disconnect();
    }
    process.exit(0);
  })();
});
