import { createKafka, createLogger, type MysqlPool } from '@hyperscale/platform';

const logger = createLogger({ service: 'bench', level: 'warn' });

/**
 * Waits until the writer group's offsets in MySQL reach the topic's high watermarks and resolves
 * with how long that took. Only then is comparing Redis with MySQL fair: requests cut off when the
 * load stopped may have changed Redis and reached Kafka without their answer being counted as
 * acknowledged. `writerEnv` is the writer's local.env (brokers, group id).
 */
export async function waitDrained(
  primary: MysqlPool,
  writerEnv: Record<string, string>,
  topic: string,
  timeoutMs = 120_000,
): Promise<number> {
  // A request cut off when the load stopped may still have its event in a producer's queue; every
  // send settles within the producer's send timeout (3 s by default), so let those land first.
  await new Promise((resolve) =>
    setTimeout(resolve, Number(writerEnv['KAFKA_SEND_TIMEOUT_MS'] ?? 3_000) + 500),
  );
  const started = Date.now();
  const kafka = createKafka({
    clientId: 'bench',
    brokers: (writerEnv['KAFKA_BROKERS'] ?? '').split(','),
    logger,
  });
  const admin = kafka.admin();
  await admin.connect();
  try {
    const groupId = writerEnv['WRITER_GROUP_ID'] ?? 'hyperscale-writer';
    for (;;) {
      const highs = await admin.fetchTopicOffsets(topic);
      const stored = await primary.select<{ partition: number; next_offset: string }>(
        'SELECT `partition`, next_offset FROM consumer_offsets WHERE group_id = ? AND topic = ?',
        [groupId, topic],
      );
      const at = new Map(stored.map((row) => [Number(row.partition), BigInt(row.next_offset)]));
      if (highs.every((p) => (at.get(p.partition) ?? 0n) >= BigInt(p.high))) return Date.now() - started;
      if (Date.now() - started > timeoutMs)
        throw new Error(`writer not drained ${topic} within ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  } finally {
    await admin.disconnect();
  }
}
