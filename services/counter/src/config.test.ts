import { describe, expect, it } from 'vitest';
import { ConfigError } from '@hyperscale/platform';
import { loadCounterConfig } from './config.js';
import { appSettings } from './settings.js';

const base = {
  SERVICE_NAME: 'counter',
  HTTP_PORT: '8081',
  METRICS_PORT: '9102',
  REDIS_SENTINELS: '127.0.0.1:26379',
  REDIS_MASTER_NAMES: 'shard-0,shard-1',
  MYSQL_PRIMARY_URL: 'mysql://u:p@127.0.0.1:3306/db',
  KAFKA_BROKERS: '127.0.0.1:9092',
  JWT_HS256_SECRET: 'x'.repeat(32),
};

describe('loadCounterConfig', () => {
  it('applies the defaults of the README', () => {
    const config = loadCounterConfig(base);
    expect(config.COUNTER_TOPIC).toBe('counters.deltas.v1');
    expect(config.UNIQUES_TOPIC).toBe('uniques.events.v1');
    expect(config.PRESENCE_WINDOW_MS).toBe(60_000);
    expect(config.SLOTMAP_PATH).toBeUndefined();
    const settings = appSettings(config);
    expect(settings.presence.windowMs).toBe(60_000);
    expect(settings.uniques.retentionDays).toBe(400);
    expect(settings.store.readCache).toEqual({ maxEntries: 100_000, maxStalenessMs: 2_000 });
    const off = appSettings(loadCounterConfig({ ...base, COUNTER_READ_CACHE_ENTRIES: '0' }));
    expect(off.store.readCache?.maxEntries).toBe(0);
  });

  it('names every missing or invalid variable', () => {
    const { JWT_HS256_SECRET: _secret, ...noSecret } = base;
    expect(() => loadCounterConfig(noSecret)).toThrow(ConfigError);
    expect(() => loadCounterConfig({ ...base, REDIS_MASTER_NAMES: '' })).toThrow(/REDIS_MASTER_NAMES/);
    expect(() => loadCounterConfig({ ...base, UNIQUES_RETENTION_DAYS: '0' })).toThrow(
      /UNIQUES_RETENTION_DAYS/,
    );
    expect(() => loadCounterConfig({ ...base, COUNTER_READ_CACHE_STALENESS_MS: '50' })).toThrow(
      /COUNTER_READ_CACHE_STALENESS_MS/,
    );
    expect(() => loadCounterConfig({ ...base, COUNTER_READ_CACHE_ENTRIES: '-1' })).toThrow(
      /COUNTER_READ_CACHE_ENTRIES/,
    );
  });
});
