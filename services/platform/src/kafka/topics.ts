import type { Admin, Kafka } from 'kafkajs';
import { KafkaAdminError, errorMessage } from './errors.js';
import { withTimeout } from './timeout.js';

/** A topic that must exist. */
export interface TopicSpec {
  topic: string;
  numPartitions: number;
  /** Default -1: the broker's `default.replication.factor`. */
  replicationFactor?: number;
  /** Topic configs, e.g. `{ 'retention.ms': '604800000' }`. Only applied when the topic is created. */
  config?: Record<string, string>;
}

/** What {@link ensureTopics} did. */
export interface EnsureTopicsResult {
  created: string[];
  existing: string[];
}

/**
 * Creates the topics that do not exist yet (idempotent: existing topics are left exactly as they
 * are — never re-partitioned, which would move keys between partitions and break per-key order) and
 * waits until the new ones have leaders. Concurrent callers racing to create the same topic are
 * fine. Rejects with KafkaAdminError if it does not finish within `timeoutMs`.
 */
export async function ensureTopics(
  kafka: Kafka,
  topics: readonly TopicSpec[],
  timeoutMs: number,
): Promise<EnsureTopicsResult> {
  return withAdmin(kafka, timeoutMs, 'ensureTopics', async (admin) => {
    const existingNow = new Set(await admin.listTopics());
    const missing = topics.filter((t) => !existingNow.has(t.topic));
    if (missing.length > 0) {
      await admin.createTopics({
        waitForLeaders: true,
        timeout: timeoutMs,
        topics: missing.map((t) => ({
          topic: t.topic,
          numPartitions: t.numPartitions,
          replicationFactor: t.replicationFactor ?? -1,
          configEntries: Object.entries(t.config ?? {}).map(([name, value]) => ({ name, value })),
        })),
      });
    }
    const missingNames = new Set(missing.map((t) => t.topic));
    return {
      created: [...missingNames],
      existing: topics.map((t) => t.topic).filter((name) => !missingNames.has(name)),
    };
  });
}

/**
 * Deletes the given topics that exist (missing ones are ignored), for tests and tools. Rejects with
 * KafkaAdminError if it does not finish within `timeoutMs`.
 */
export async function deleteTopics(
  kafka: Kafka,
  topics: readonly string[],
  timeoutMs: number,
): Promise<string[]> {
  return withAdmin(kafka, timeoutMs, 'deleteTopics', async (admin) => {
    const existing = new Set(await admin.listTopics());
    const present = topics.filter((t) => existing.has(t));
    if (present.length > 0) await admin.deleteTopics({ topics: present, timeout: timeoutMs });
    return present;
  });
}

async function withAdmin<T>(
  kafka: Kafka,
  timeoutMs: number,
  operation: string,
  work: (admin: Admin) => Promise<T>,
): Promise<T> {
  const admin = kafka.admin({ retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 1000 } });
  try {
    return await withTimeout(
      (async () => {
        await admin.connect();
        return work(admin);
      })(),
      timeoutMs,
      () => new KafkaAdminError(`${operation} did not finish within ${timeoutMs} ms`),
    );
  } catch (err) {
    if (err instanceof KafkaAdminError) throw err;
    throw new KafkaAdminError(`${operation} failed: ${errorMessage(err)}`, { cause: err });
  } finally {
    await withTimeout(admin.disconnect(), 2000, () => new Error('admin disconnect timed out')).catch(
      () => undefined,
    );
  }
}
