/**
 * `make bench SCENARIOS=writer-deltas`: how fast the writer applies counter deltas to MySQL (the
 * counter issue's floor: ≥ 50,000 deltas/s). On a topic and consumer group of its own it produces
 * `BENCH_WRITER_DELTAS` deltas over 1,000 names (6 partitions), then starts the real writer and
 * measures from the first stored offset (process start and group join excluded) until every
 * partition is applied; finally checks every name's sum in MySQL. Last line:
 * `RESULT scenario=writer-deltas deltas=… deltas_per_s=… seconds=… target=50000 lost=…`.
 */
import { randomUUID } from 'node:crypto';
import {
  createKafka,
  createLogger,
  createMysqlPools,
  deleteTopics,
  ensureTopics,
} from '@hyperscale/platform';
import { freePort, httpOk, readEnvFile, repoRoot, startProcess, type RunningProcess } from './processes.js';

export const WRITER_DELTAS = 'writer-deltas';

const TOTAL = Number(process.env['BENCH_WRITER_DELTAS'] ?? 200_000);
const NAMES = 1_000;

export async function runWriterDeltas(): Promise<void> {
  const runId = `w${Date.now().toString(36)}`;
  const writerEnv = readEnvFile(`${repoRoot}services/writer/local.env`);
  const logger = createLogger({ service: 'bench', level: 'warn' });
  const topic = `bench.counters.${runId}`;
  // The likes handler cannot be switched off: it gets an empty topic of its own (a new group on
  // the real one would apply its history again).
  const likesTopic = `bench.likes.${runId}`;
  const groupId = `bench-writer-${runId}`;
  const kafka = createKafka({
    clientId: 'bench',
    brokers: (writerEnv['KAFKA_BROKERS'] ?? '').split(','),
    logger,
  });
  const pools = createMysqlPools({
    primaryUrl: writerEnv['MYSQL_PRIMARY_URL'] ?? '',
    connectionLimit: 2,
    connectTimeoutMs: 2_000,
    queryTimeoutMs: 30_000,
  });
  const processes: RunningProcess[] = [];
  const names = Array.from({ length: NAMES }, (_, i) => `${runId}-w${i}`);
  try {
    await ensureTopics(
      kafka,
      [topic, likesTopic].flatMap((t) => [
        { topic: t, numPartitions: 6 },
        { topic: `${t}.dlq`, numPartitions: 1 },
      ]),
      30_000,
    );
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 5 });
    await producer.connect();
    const at = new Date().toISOString();
    const expected = new Map<string, number>();
    for (let i = 0; i < TOTAL; i += 5_000) {
      const messages = [];
      for (let j = i; j < Math.min(TOTAL, i + 5_000); j += 1) {
        const name = names[j % NAMES] ?? '';
        const delta = 1 + (j % 3);
        expected.set(name, (expected.get(name) ?? 0) + delta);
        messages.push({ key: name, value: JSON.stringify({ eventId: randomUUID(), name, delta, at }) });
      }
      await producer.send({ topic, acks: -1, messages });
    }
    await producer.disconnect();

    const metricsPort = await freePort();
    processes.push(
      await startProcess({
        name: 'writer-deltas',
        script: `${repoRoot}services/writer/dist/main.js`,
        env: {
          ...writerEnv,
          METRICS_PORT: String(metricsPort),
          LOG_LEVEL: process.env['BENCH_CHILD_LOG_LEVEL'] ?? 'warn',
          WRITER_GROUP_ID: groupId,
          WRITER_COUNTERS_TOPIC: topic,
          WRITER_LIKES_TOPIC: likesTopic,
          WRITER_UNIQUES_TOPIC: 'none',
          WRITER_BATCH_MAX_MESSAGES: '5000',
          WRITER_PARTITION_CONCURRENCY: '6',
          MYSQL_CONNECTION_LIMIT: '10',
          RETENTION_INTERVAL_MS: '0',
        },
        ready: () => httpOk(`http://127.0.0.1:${metricsPort}/readyz`),
      }),
    );
    const applied = async (): Promise<number> => {
      const [row] = await pools.primary.select<{ n: string | null }>(
        'SELECT SUM(next_offset) AS n FROM consumer_offsets WHERE group_id = ? AND topic = ?',
        [groupId, topic],
      );
      return Number(row?.n ?? 0);
    };
    let first = 0;
    const deadline = Date.now() + 300_000;
    while ((first = await applied()) === 0) {
      if (Date.now() > deadline) throw new Error('writer applied nothing within 300 s');
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const t0 = performance.now();
    while ((await applied()) < TOTAL) {
      if (Date.now() > deadline) throw new Error('writer did not apply every delta within 300 s');
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const seconds = (performance.now() - t0) / 1_000;
    let lost = 0;
    for (let i = 0; i < NAMES; i += 500) {
      const chunk = names.slice(i, i + 500);
      const rows = await pools.primary.select<{ name: string; value: string }>(
        `SELECT name, value FROM counters WHERE name IN (${chunk.map(() => '?').join(',')})`,
        chunk,
      );
      const stored = new Map(rows.map((r) => [r.name, Number(r.value)]));
      for (const n of chunk) if (stored.get(n) !== expected.get(n)) lost += 1;
    }
    process.stdout.write(
      `RESULT scenario=${WRITER_DELTAS} deltas=${TOTAL} deltas_per_s=${Math.round((TOTAL - first) / seconds)} ` +
        `seconds=${seconds.toFixed(2)} target=50000 lost=${lost}\n`,
    );
  } finally {
    for (const p of processes) await p.stop();
    await deleteTopics(kafka, [topic, `${topic}.dlq`, likesTopic, `${likesTopic}.dlq`], 30_000).catch(
      () => undefined,
    );
    await pools.close();
  }
}
