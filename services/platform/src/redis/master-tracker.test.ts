import { describe, expect, it } from 'vitest';
import { MasterTracker, normalizeHost, parseSwitchMaster } from './master-tracker.js';

const A = { host: '127.0.0.1', port: 6381 };
const B = { host: '127.0.0.1', port: 6382 };
const C = { host: '127.0.0.1', port: 6383 };

describe('parseSwitchMaster', () => {
  it('parses the Sentinel payload', () => {
    expect(parseSwitchMaster('shard-1 127.0.0.1 6381 127.0.0.1 6382')).toEqual({
      masterName: 'shard-1',
      from: A,
      to: B,
    });
  });
  it.each(['', 'shard-1 127.0.0.1 6381 127.0.0.1', 'shard-1 h x h 2', 'shard-1 h 1 h 99999', 'a b c d e f'])(
    'rejects %j',
    (message) => expect(parseSwitchMaster(message)).toBeNull(),
  );
});

describe('normalizeHost', () => {
  it('strips the IPv4-mapped prefix only', () => {
    expect(normalizeHost('::ffff:127.0.0.1')).toBe('127.0.0.1');
    expect(normalizeHost('::1')).toBe('::1');
    expect(normalizeHost('redis-0.redis')).toBe('redis-0.redis');
  });
});

describe('MasterTracker', () => {
  it('reports one failover once although every Sentinel and the reconnect report it', () => {
    const tracker = new MasterTracker();
    expect(tracker.fromConnection(A)).toBeNull(); // starting point, not a switch
    expect(tracker.fromSentinel(A, B)).toEqual({ from: A, to: B, detectedBy: 'sentinel' });
    expect(tracker.fromSentinel(A, B)).toBeNull();
    expect(tracker.fromSentinel(A, B)).toBeNull();
    expect(tracker.fromConnection(B)).toBeNull();
    expect(tracker.fromConnection({ host: '::ffff:127.0.0.1', port: 6382 })).toBeNull();
    expect(tracker.current()).toEqual(B);
  });

  it('detects a switch by reconnect when the announcement was missed, and dedupes the late announcement', () => {
    const tracker = new MasterTracker();
    tracker.fromConnection(A);
    expect(tracker.fromConnection(B)).toEqual({ from: A, to: B, detectedBy: 'reconnect' });
    expect(tracker.fromSentinel(A, B)).toBeNull();
  });

  it('reports consecutive failovers, including a switch back', () => {
    const tracker = new MasterTracker();
    tracker.fromConnection(A);
    expect(tracker.fromSentinel(A, B)?.to).toEqual(B);
    expect(tracker.fromSentinel(B, A)).toEqual({ from: B, to: A, detectedBy: 'sentinel' });
    expect(tracker.fromSentinel(A, B)).toEqual({ from: A, to: B, detectedBy: 'sentinel' }); // from = current: real
  });

  it('ignores a late duplicate of an older switch', () => {
    const tracker = new MasterTracker();
    tracker.fromConnection(A);
    tracker.fromSentinel(A, B);
    tracker.fromSentinel(B, C);
    expect(tracker.fromSentinel(A, B)).toBeNull(); // slow Sentinel repeating the first failover
    expect(tracker.current()).toEqual(C);
  });

  it('forgets old pairs after the history window', () => {
    let now = 0;
    const tracker = new MasterTracker(1000, () => now);
    tracker.fromConnection(A);
    tracker.fromSentinel(A, B);
    tracker.fromSentinel(B, C);
    now = 5000;
    expect(tracker.fromSentinel(A, B)).toEqual({ from: C, to: B, detectedBy: 'sentinel' });
  });

  it('accepts an announcement before any connection, with the announced from', () => {
    const tracker = new MasterTracker();
    expect(tracker.fromSentinel(A, B)).toEqual({ from: A, to: B, detectedBy: 'sentinel' });
  });

  it('does not compare a socket IP with an announced hostname', () => {
    const tracker = new MasterTracker();
    tracker.fromSentinel({ host: 'redis-0', port: 6379 }, { host: 'redis-1', port: 6379 });
    expect(tracker.fromConnection({ host: '10.0.0.7', port: 6379 })).toBeNull();
    expect(tracker.current()).toEqual({ host: 'redis-1', port: 6379 });
  });
});
