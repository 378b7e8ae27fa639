import { ConfigError } from '@hyperscale/platform';
import { describe, expect, it } from 'vitest';
import { loadWriterConfig } from './config.js';

const base = {
  SERVICE_NAME: 'writer',
  METRICS_PORT: '9103',
  MYSQL_PRIMARY_URL: 'mysql://u:p@127.0.0.1:3306/hyperscale',
  KAFKA_BROKERS: '127.0.0.1:9092',
};

function issues(env: Record<string, string>): string[] {
  try {
    loadWriterConfig({ ...base, ...env });
  } catch (err) {
    if (err instanceof ConfigError) return err.issues.map((i) => i.variable);
    throw err;
  }
  return [];
}

describe('loadWriterConfig', () => {
  it('fills the defaults', () => {
    const config = loadWriterConfig(base);
    expect(config.WRITER_GROUP_ID).toBe('hyperscale-writer');
    expect(config.WRITER_LIKES_TOPIC).toBe('likes.events.v1');
    expect(config.WRITER_BATCH_MAX_MESSAGES).toBe(1000);
    expect(config.WRITER_BATCH_MAX_WAIT_MS).toBe(50);
    expect(config.WRITER_FETCH_MIN_BYTES).toBe(65_536);
    expect(config.MYSQL_MIGRATE_ON_START).toBe(false);
    expect(config.MYSQL_KILL_TIMED_OUT_SESSIONS).toBe(true);
    expect(
      loadWriterConfig({ ...base, MYSQL_KILL_TIMED_OUT_SESSIONS: 'false' }).MYSQL_KILL_TIMED_OUT_SESSIONS,
    ).toBe(false);
    expect(config.KAFKA_BROKERS).toEqual([{ host: '127.0.0.1', port: 9092 }]);
  });

  it('has retention defaults (1 min interval, 7 days of fallback_events, 1 hour of presence) and bounds', () => {
    const config = loadWriterConfig(base);
    expect(config.RETENTION_INTERVAL_MS).toBe(60_000);
    expect(config.FALLBACK_EVENTS_RETENTION_MS).toBe(7 * 86_400_000);
    expect(config.PRESENCE_RETENTION_MS).toBe(3_600_000);
    expect(loadWriterConfig({ ...base, RETENTION_INTERVAL_MS: '0' }).RETENTION_INTERVAL_MS).toBe(0);
    expect(
      issues({
        FALLBACK_EVENTS_RETENTION_MS: '1000',
        PRESENCE_RETENTION_MS: '59999',
        RETENTION_INTERVAL_MS: '-1',
      }).sort(),
    ).toEqual(['FALLBACK_EVENTS_RETENTION_MS', 'PRESENCE_RETENTION_MS', 'RETENTION_INTERVAL_MS']);
  });

  it('names every bad variable at once', () => {
    expect(
      issues({
        WRITER_GROUP_ID: 'has space',
        WRITER_BATCH_MAX_MESSAGES: '0',
        WRITER_LIKES_TOPIC: 'a/b',
      }).sort(),
    ).toEqual(['WRITER_BATCH_MAX_MESSAGES', 'WRITER_GROUP_ID', 'WRITER_LIKES_TOPIC']);
  });

  it('rejects combinations that cannot work', () => {
    expect(issues({ WRITER_HEARTBEAT_INTERVAL_MS: '30000', WRITER_SESSION_TIMEOUT_MS: '30000' })).toEqual([
      'WRITER_HEARTBEAT_INTERVAL_MS',
    ]);
    expect(issues({ WRITER_PARTITION_CONCURRENCY: '20', MYSQL_CONNECTION_LIMIT: '20' })).toEqual([
      'MYSQL_CONNECTION_LIMIT',
    ]);
    expect(issues({ WRITER_STOP_TIMEOUT_MS: '14000', SHUTDOWN_TIMEOUT_MS: '15000' })).toEqual([
      'WRITER_STOP_TIMEOUT_MS',
    ]);
    expect(issues({ WRITER_RETRY_INITIAL_DELAY_MS: '500', WRITER_RETRY_MAX_DELAY_MS: '100' })).toEqual([
      'WRITER_RETRY_MAX_DELAY_MS',
    ]);
  });
});
