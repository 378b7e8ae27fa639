import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  flag,
  hostPortList,
  kafkaEnv,
  loadConfig,
  mysqlEnv,
  port,
  processEnv,
} from './config.js';

function issuesOf(run: () => unknown): string[] {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).issues.map((issue) => issue.variable);
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('names a missing required variable', () => {
    expect(() => loadConfig({ METRICS_PORT: port }, {})).toThrow(/METRICS_PORT: is required/);
  });

  it('names a malformed variable and says what is wrong', () => {
    expect(() => loadConfig({ METRICS_PORT: port }, { METRICS_PORT: '99999' })).toThrow(/METRICS_PORT/);
    expect(() => loadConfig({ METRICS_PORT: port }, { METRICS_PORT: 'abc' })).toThrow(/METRICS_PORT/);
  });

  it('reports every bad variable at once', () => {
    const variables = issuesOf(() =>
      loadConfig({ ...processEnv, ...mysqlEnv, ...kafkaEnv }, { SERVICE_NAME: 'x', KAFKA_BROKERS: 'nohost' }),
    );
    expect(variables.sort()).toEqual(['KAFKA_BROKERS', 'METRICS_PORT', 'MYSQL_PRIMARY_URL']);
  });

  it('treats an empty value as unset, so defaults apply', () => {
    const config = loadConfig(processEnv, { SERVICE_NAME: 'like', METRICS_PORT: '9101', LOG_LEVEL: '' });
    expect(config.LOG_LEVEL).toBe('info');
    expect(config.SHUTDOWN_TIMEOUT_MS).toBe(15_000);
  });

  it('rejects a URL of the wrong scheme', () => {
    expect(() => loadConfig(mysqlEnv, { MYSQL_PRIMARY_URL: 'postgres://h/db' })).toThrow(
      /MYSQL_PRIMARY_URL: expected a URL starting with mysql:\/\//,
    );
  });

  it('ignores variables outside the schema', () => {
    const config = loadConfig({ METRICS_PORT: port }, { METRICS_PORT: '9101', UNRELATED: 'x' });
    expect(config).toEqual({ METRICS_PORT: 9101 });
  });
});

describe('field parsers', () => {
  it('parses host:port lists', () => {
    expect(hostPortList.parse('127.0.0.1:26379, redis-sentinel:26380')).toEqual([
      { host: '127.0.0.1', port: 26379 },
      { host: 'redis-sentinel', port: 26380 },
    ]);
    expect(hostPortList.safeParse('127.0.0.1').success).toBe(false);
    expect(hostPortList.safeParse('h:0').success).toBe(false);
    expect(hostPortList.safeParse('h:70000').success).toBe(false);
  });

  it('parses flags strictly', () => {
    expect(flag.parse('TRUE')).toBe(true);
    expect(flag.parse('0')).toBe(false);
    expect(flag.safeParse('maybe').success).toBe(false);
  });
});
