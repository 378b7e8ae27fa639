import { describe, expect, it } from 'vitest';
import { buildRedisOptions, cappedBackoff, isSentinelTarget } from './client.js';

describe('cappedBackoff', () => {
  it('grows exponentially, never exceeds the cap, and jitters within [half, all] of the step', () => {
    const low = cappedBackoff({ initialDelayMs: 50, maxDelayMs: 2000 }, () => 0);
    const high = cappedBackoff({ initialDelayMs: 50, maxDelayMs: 2000 }, () => 1);
    expect([1, 2, 3, 4, 5, 6, 7].map(low)).toEqual([25, 50, 100, 200, 400, 800, 1000]);
    expect([1, 2, 3, 4, 5, 6, 7].map(high)).toEqual([50, 100, 200, 400, 800, 1600, 2000]);
    expect(high(10_000)).toBe(2000); // no overflow for huge attempt numbers, never gives up
    for (let attempt = 1; attempt < 50; attempt++)
      expect(cappedBackoff({ initialDelayMs: 50, maxDelayMs: 2000 })(attempt)).toBeLessThanOrEqual(2000);
  });
});

describe('buildRedisOptions', () => {
  it('configures a Sentinel group: master role, bounded commands, no offline queue, no ioredis detector', () => {
    const options = buildRedisOptions({
      sentinels: [{ host: '127.0.0.1', port: 26379 }],
      masterName: 'shard-1',
      commandTimeoutMs: 700,
      connectTimeoutMs: 900,
    });
    expect(options).toMatchObject({
      sentinels: [{ host: '127.0.0.1', port: 26379 }],
      name: 'shard-1',
      role: 'master',
      failoverDetector: false,
      commandTimeout: 700,
      sentinelCommandTimeout: 700,
      connectTimeout: 900,
      maxRetriesPerRequest: 1,
      enableAutoPipelining: true,
      enableOfflineQueue: false,
      autoResendUnfulfilledCommands: true,
      enableReadyCheck: true,
    });
    expect(options.host).toBeUndefined();
    expect(typeof options.retryStrategy).toBe('function');
    expect(typeof options.sentinelRetryStrategy).toBe('function');
    expect(typeof options.sentinelReconnectStrategy).toBe('function');
  });

  it('configures a direct server with defaults', () => {
    const options = buildRedisOptions({ host: '127.0.0.1', port: 6380 });
    expect(options).toMatchObject({
      host: '127.0.0.1',
      port: 6380,
      commandTimeout: 1000,
      connectTimeout: 2000,
    });
    expect(options.sentinels).toBeUndefined();
    expect(options.failoverDetector).toBeUndefined();
  });

  it('exposes the resend and offline-queue switches', () => {
    const options = buildRedisOptions({
      host: 'h',
      port: 1,
      autoResendUnfulfilledCommands: false,
      offlineQueue: true,
    });
    expect(options.autoResendUnfulfilledCommands).toBe(false);
    expect(options.enableOfflineQueue).toBe(true);
  });

  it('reconnects on READONLY replies only', () => {
    const { reconnectOnError } = buildRedisOptions({ host: 'h', port: 1 });
    expect(reconnectOnError?.(new Error("READONLY You can't write against a read only replica."))).toBe(true);
    expect(
      reconnectOnError?.(new Error('WRONGTYPE Operation against a key holding the wrong kind of value')),
    ).toBe(false);
    expect(reconnectOnError?.(new Error('Command timed out'))).toBe(false);
  });

  it("lets a bare Sentinel client opt into ioredis' failover detector", () => {
    const options = buildRedisOptions({
      sentinels: [{ host: 'h', port: 1 }],
      masterName: 'x',
      failoverDetector: true,
    });
    expect(options.failoverDetector).toBe(true);
  });

  it('refuses a Sentinel target without Sentinels', () => {
    expect(() => buildRedisOptions({ sentinels: [], masterName: 'x' })).toThrow(RangeError);
  });

  it('tells targets apart', () => {
    expect(isSentinelTarget({ sentinels: [], masterName: 'x' })).toBe(true);
    expect(isSentinelTarget({ host: 'h', port: 1 })).toBe(false);
  });
});
