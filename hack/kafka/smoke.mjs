/* eslint-disable no-console -- a command-line script: its console output is its interface */
// Smoke test of the pinned Kafka broker against the repo's kafkajs (2.2.4).
//
// Usage: node hack/kafka/smoke.mjs [broker]          (default 127.0.0.1:9092)
//
// Proves the operations the platform relies on: admin createTopics / metadata, an idempotent
// producer with acks=-1 (all), a consumer in a classic consumer group that joins, receives every
// message in order and commits offsets, and fetchOffsets of that group. Exits 0 and prints one
// "kafka smoke: OK ..." line on success; exits 1 with the failing step otherwise.
import { createRequire } from 'node:module';
import { randomUUID } from 'node:crypto';

const require = createRequire(import.meta.url);
const { Kafka, logLevel } = require('kafkajs');

const broker = process.argv[2] ?? '127.0.0.1:9092';
const topic = `hack.smoke.${randomUUID().slice(0, 8)}`;
const groupId = `hack-smoke-${randomUUID().slice(0, 8)}`;
const count = 50;
const started = Date.now();
let step = 'connect';

const kafka = new Kafka({
  clientId: 'hack-smoke',
  brokers: [broker],
  logLevel: logLevel.WARN,
  connectionTimeout: 3000,
  requestTimeout: 10000,
  retry: { retries: 3 },
});
const admin = kafka.admin();
const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
const consumer = kafka.consumer({ groupId, sessionTimeout: 10000, heartbeatInterval: 1000 });

const timer = setTimeout(() => {
  console.error(`kafka smoke: FAILED at step "${step}": timed out after 60 s`);
  process.exit(1);
}, 60_000);

try {
  step = 'admin.connect';
  await admin.connect();
  step = 'admin.createTopics';
  const created = await admin.createTopics({
    topics: [{ topic, numPartitions: 3, replicationFactor: 1 }],
    waitForLeaders: true,
  });
  if (!created) throw new Error('createTopics returned false');
  step = 'admin.fetchTopicMetadata';
  const meta = await admin.fetchTopicMetadata({ topics: [topic] });
  const partitions = meta.topics[0]?.partitions.length ?? 0;
  if (partitions !== 3) throw new Error(`expected 3 partitions, got ${partitions}`);

  step = 'producer (idempotent, acks=-1)';
  await producer.connect();
  const messages = Array.from({ length: count }, (_, i) => ({ key: 'post-1', value: String(i) }));
  const res = await producer.send({ topic, acks: -1, messages });
  if (res.length === 0 || res.some((r) => r.errorCode !== 0)) {
    throw new Error(`produce failed: ${JSON.stringify(res)}`);
  }

  step = 'consumer group join + consume';
  const received = [];
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const done = new Promise((resolve) => {
    void consumer.run({
      autoCommit: true,
      autoCommitInterval: 100,
      eachMessage: async ({ message }) => {
        received.push(Number(message.value?.toString()));
        if (received.length === count) resolve();
      },
    });
  });
  await done;
  for (let i = 0; i < count; i += 1) {
    if (received[i] !== i) throw new Error(`out of order at ${i}: ${received.slice(0, 10)}`);
  }
  step = 'consumer commit + admin.fetchOffsets';
  await consumer.commitOffsets([]);
  await consumer.stop();
  await consumer.disconnect();
  const offsets = await admin.fetchOffsets({ groupId, topics: [topic] });
  const committed = offsets[0]?.partitions.reduce((sum, p) => sum + Math.max(0, Number(p.offset)), 0);
  if (committed !== count) throw new Error(`committed offsets sum ${committed}, expected ${count}`);

  step = 'cleanup';
  await producer.disconnect();
  await admin.deleteTopics({ topics: [topic] });
  await admin.disconnect();
  clearTimeout(timer);
  console.log(
    `kafka smoke: OK broker=${broker} topic=${topic} produced=${count} (idempotent, acks=-1) ` +
      `consumed=${received.length} in order, group=${groupId} committed=${committed} ` +
      `in ${Date.now() - started} ms`,
  );
  process.exit(0);
} catch (err) {
  console.error(`kafka smoke: FAILED at step "${step}": ${err instanceof Error ? err.stack : String(err)}`);
  process.exit(1);
}
