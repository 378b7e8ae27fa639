import { describe, expect, it } from 'vitest';
import {
  GtidParseError,
  formatGtidPosition,
  gtidCaughtUp,
  gtidTransactionsBehind,
  parseGtidPosition,
} from './gtid.js';

describe('parseGtidPosition', () => {
  it('parses a multi-domain position into one entry per domain, ordered by domain', () => {
    expect(parseGtidPosition('1-2-5,0-1-100')).toEqual([
      { domain: 0, serverId: 1, seq: 100n },
      { domain: 1, serverId: 2, seq: 5n },
    ]);
  });

  it('treats empty and whitespace-only input as the empty position', () => {
    expect(parseGtidPosition('')).toEqual([]);
    expect(parseGtidPosition('  \n')).toEqual([]);
  });

  it('accepts the whitespace and newlines the server puts into long lists', () => {
    expect(parseGtidPosition(' 0-1-100,\n1-2-5 ')).toHaveLength(2);
  });

  it('keeps the highest sequence when a domain repeats', () => {
    expect(parseGtidPosition('0-1-7,0-3-9,0-2-8')).toEqual([{ domain: 0, serverId: 3, seq: 9n }]);
  });

  it('keeps 64-bit sequence numbers exact', () => {
    const [g] = parseGtidPosition('0-1-18446744073709551615');
    expect(g?.seq).toBe(18446744073709551615n);
  });

  it.each(['0-1', '0-1-x', 'a-b-c', '0-1-2,', '0-1-2;1-1-1', '-1-1-1'])('rejects %j', (bad) => {
    expect(() => parseGtidPosition(bad)).toThrow(GtidParseError);
  });

  it('round-trips through formatGtidPosition', () => {
    expect(formatGtidPosition(parseGtidPosition('1-2-5,0-1-100'))).toBe('0-1-100,1-2-5');
  });
});

describe('gtidTransactionsBehind / gtidCaughtUp', () => {
  const p = parseGtidPosition;

  it('is zero when positions are equal', () => {
    expect(gtidTransactionsBehind(p('0-1-100,1-2-5'), p('0-1-100,1-2-5'))).toBe(0n);
    expect(gtidCaughtUp(p('0-1-100,1-2-5'), p('1-2-5,0-1-100'))).toBe(true);
  });

  it('sums the per-domain sequence difference', () => {
    expect(gtidTransactionsBehind(p('0-1-100,1-2-5'), p('0-1-90,1-2-3'))).toBe(12n);
    expect(gtidCaughtUp(p('0-1-100'), p('0-1-99'))).toBe(false);
  });

  it('counts a domain unknown to the replica from zero', () => {
    expect(gtidTransactionsBehind(p('0-1-100,1-2-5'), p('0-1-100'))).toBe(5n);
  });

  it('ignores domains where the replica is ahead instead of cancelling lag elsewhere', () => {
    expect(gtidTransactionsBehind(p('0-1-100,1-2-5'), p('0-1-90,1-2-50'))).toBe(10n);
  });

  it('ignores server ids (they change on failover; the domain sequence continues)', () => {
    expect(gtidTransactionsBehind(p('0-2-100'), p('0-1-100'))).toBe(0n);
  });

  it('ignores replica-only domains', () => {
    expect(gtidCaughtUp(p('0-1-100'), p('0-1-100,7-9-3'))).toBe(true);
  });

  it('an empty primary position is always caught up', () => {
    expect(gtidCaughtUp([], p('0-1-1'))).toBe(true);
    expect(gtidCaughtUp([], [])).toBe(true);
  });
});
