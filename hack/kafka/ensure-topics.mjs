/* eslint-disable no-console -- a command-line script: its console output is its interface */
// Creates the project's Kafka topics when missing, and warms up the broker's coordinators.
// Run by hack/stack.sh (kafkajs from the repo's node_modules); not part of any service.
//
//   node hack/kafka/ensure-topics.mjs --broker 127.0.0.1:9092 --partitions 6 [--timeout-ms 30000] TOPIC...
//   node hack/kafka/ensure-topics.mjs --check --broker 127.0.0.1:9092 TOPIC...
//
// Create mode: creates each missing TOPIC (replication factor 1), warns about an existing topic
// with fewer partitions (never changes it), then makes the group coordinator (__consumer_offsets)
// and the producer-id manager answer, so the first consumer group join / idempotent producer of a
// test does not get "The coordinator is loading". Retries until --timeout-ms.
// Check mode: prints "N/M topics" and exits 1 when a topic is missing or the broker does not answer.
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';

const require = createRequire(import.meta.url);
const { Kafka, logLevel } = require('kafkajs');

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    broker: { type: 'string', default: '127.0.0.1:9092' },
    partitions: { type: 'string', default: '6' },
    'timeout-ms': { type: 'string', default: '30000' },
    check: { type: 'boolean', default: false },
  },
});
const topics = positionals;
const partitions = Number(values.partitions);
const deadline = Date.now() + Number(values['timeout-ms']);

const kafka = new Kafka({
  clientId: 'hack-stack',
  brokers: [values.broker],
  logLevel: logLevel.NOTHING,
  connectionTimeout: 2000,
  requestTimeout: 5000,
  retry: { retries: 0 },
});

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs fn until it succeeds or the deadline passes (then rethrows the last error). */
async function retry(what, fn) {
  let lastError;
  while (Date.now() < deadline) {
    try {
      return await fn();
    } catch (err) {
      lastError = err;
      await sleep(250);
    }
  }
  throw new Error(`${what}: ${lastError instanceof Error ? lastError.message : String(lastError)}`);
}

const admin = kafka.admin();
const exit = (code) => {
  clearTimeout(watchdog);
  process.exitCode = code;
};
const watchdog = setTimeout(
  () => {
    console.error(`ensure-topics: gave up after ${values['timeout-ms']} ms`);
    process.exit(1);
  },
  Number(values['timeout-ms']) + 2000,
);

try {
  await retry('connect', () => admin.connect());
  const existing = new Set(await retry('listTopics', () => admin.listTopics()));
  const missing = topics.filter((t) => !existing.has(t));

  if (values.check) {
    console.log(
      missing.length === 0
        ? `${topics.length}/${topics.length} topics`
        : `${topics.length - missing.length}/${topics.length} topics, missing: ${missing.join(' ')}`,
    );
    await admin.disconnect();
    exit(missing.length === 0 ? 0 : 1);
  } else {
    if (missing.length > 0) {
      await retry('createTopics', async () => {
        const now = new Set(await admin.listTopics());
        const todo = missing.filter((t) => !now.has(t));
        if (todo.length === 0) return;
        await admin.createTopics({
          waitForLeaders: true,
          topics: todo.map((topic) => ({ topic, numPartitions: partitions, replicationFactor: 1 })),
        });
      });
      console.error(`[stack] kafka: created ${missing.join(' ')} (${partitions} partitions)`);
    }
    const meta = await retry('fetchTopicMetadata', () => admin.fetchTopicMetadata({ topics }));
    for (const t of meta.topics) {
      if (t.partitions.length < partitions) {
        console.error(
          `[stack] kafka: WARNING topic ${t.name} has ${t.partitions.length} partitions, ` +
            `HS_KAFKA_PARTITIONS=${partitions} (left unchanged; \`hack/stack.sh down && rm -rf .stack/kafka\` to recreate)`,
        );
      }
    }
    // Group coordinator: the first FindCoordinator creates __consumer_offsets; wait until it is loaded.
    await retry('group coordinator', async () => {
      const { groups } = await admin.describeGroups(['hack-stack-warmup']);
      if (groups[0]?.errorCode) throw new Error(`describeGroups error ${groups[0].errorCode}`);
    });
    // Producer ids: an idempotent producer's InitProducerId must succeed.
    await retry('producer id', async () => {
      const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, retry: { retries: 1 } });
      try {
        await producer.connect();
      } finally {
        await producer.disconnect().catch(() => undefined);
      }
    });
    await admin.disconnect();
    exit(0);
  }
} catch (err) {
  console.error(`ensure-topics: ${err instanceof Error ? err.message : String(err)}`);
  await admin.disconnect().catch(() => undefined);
  exit(1);
}
