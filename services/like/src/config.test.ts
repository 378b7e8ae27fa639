import { describe, expect, it } from 'vitest';
import { ConfigError } from '@hyperscale/platform';
import { loadLikeConfig } from './config.js';

const base = {
  SERVICE_NAME: 'like',
  METRICS_PORT: '9101',
  HTTP_PORT: '8080',
  REDIS_SENTINELS: '127.0.0.1:26379',
  REDIS_MASTER_NAMES: 'shard-0,shard-1',
  MYSQL_PRIMARY_URL: 'mysql://u:p@127.0.0.1:3306/db',
  KAFKA_BROKERS: '127.0.0.1:9092',
  JWT_HS256_SECRET: 's'.repeat(32),
  ADMIN_TOKEN: 'a'.repeat(16),
};

describe('loadLikeConfig', () => {
  it('applies the defaults', () => {
    const config = loadLikeConfig(base);
    expect(config.LIKE_DEV_MODE).toBe(false);
    expect(config.LIKE_TOPIC).toBe('likes.events.v1');
    expect(config.WRITER_GROUP_ID).toBe('hyperscale-writer');
    expect(config.REDIS_MASTER_NAMES).toEqual(['shard-0', 'shard-1']);
    expect(config.CORS_ORIGINS).toBeUndefined();
    expect(config.LIKE_WARM_WAIT_MS).toBe(2_000);
    expect(config.LIKE_READ_CACHE_ENTRIES).toBe(100_000);
    expect(config.LIKE_READ_CACHE_STALENESS_MS).toBe(2_000);
    expect(() => loadLikeConfig({ ...base, LIKE_READ_CACHE_STALENESS_MS: '99' })).toThrow(
      /LIKE_READ_CACHE_STALENESS_MS/,
    );
  });

  it('names every offending variable', () => {
    try {
      loadLikeConfig({ ...base, JWT_HS256_SECRET: undefined, ADMIN_TOKEN: 'short', LIKE_DEV_MODE: 'maybe' });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const variables = (err as ConfigError).issues.map((i) => i.variable).sort();
      expect(variables).toEqual(['ADMIN_TOKEN', 'LIKE_DEV_MODE']);
    }
    expect(() => loadLikeConfig({ ...base, JWT_HS256_SECRET: undefined })).toThrow(/JWT_HS256_SECRET/);
    expect(() => loadLikeConfig({ ...base, REDIS_MASTER_NAMES: undefined })).toThrow(/REDIS_MASTER_NAMES/);
    expect(() =>
      loadLikeConfig({ ...base, REDIS_SENTINELS: undefined, REDIS_MASTER_NAMES: undefined }),
    ).toThrow(/REDIS_SENTINELS/);
  });

  it('accepts a JWKS URL instead of a secret, and dev mode', () => {
    const config = loadLikeConfig({
      ...base,
      JWT_HS256_SECRET: undefined,
      JWT_JWKS_URL: 'https://issuer.example/jwks.json',
      LIKE_DEV_MODE: 'true',
      CORS_ORIGINS: 'https://a.example, https://b.example',
    });
    expect(config.LIKE_DEV_MODE).toBe(true);
    expect(config.CORS_ORIGINS).toEqual(['https://a.example', 'https://b.example']);
  });
});
