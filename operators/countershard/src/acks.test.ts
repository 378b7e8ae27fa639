import { describe, expect, it } from 'vitest';
import { checkAcks, mergeAcks, parseAck } from './acks.js';

describe('pod acknowledgements', () => {
  it('parses <epoch>:<unixMs> and nothing else', () => {
    expect(parseAck('7:1700000000000')).toEqual({ epoch: 7, at: 1_700_000_000_000 });
    expect(parseAck('7')).toBeUndefined();
    expect(parseAck('x:1')).toBeUndefined();
    expect(parseAck('-1:5')).toBeUndefined();
  });

  it('keeps the most recent report of a pod across shards', () => {
    const acks = mergeAcks([
      { a: '3:100', b: '4:100' },
      { a: '4:200', c: 'garbage' },
    ]);
    expect(acks).toEqual([
      { pod: 'a', epoch: 4, at: 200 },
      { pod: 'b', epoch: 4, at: 100 },
    ]);
  });

  it('holds on live pods behind the epoch, ignores pods silent for longer than the staleness limit', () => {
    const acks = [
      { pod: 'current', epoch: 5, at: 9_000 },
      { pod: 'behind', epoch: 4, at: 9_500 },
      { pod: 'gone', epoch: 3, at: 1_000 },
    ];
    const check = checkAcks(acks, 5, 10_000, 4_000);
    expect(check.live.map((a) => a.pod)).toEqual(['current', 'behind']);
    expect(check.behind.map((a) => a.pod)).toEqual(['behind']);
    expect(checkAcks(acks, 4, 10_000, 4_000).behind).toEqual([]);
  });
});
