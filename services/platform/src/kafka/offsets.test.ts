import { describe, expect, it } from 'vitest';
import { addOffset, assignOffsets, consumerLag, nextOffset } from './offsets.js';

describe('offset arithmetic', () => {
  it('computes next offsets beyond 2^53 without rounding', () => {
    expect(nextOffset('0')).toBe('1');
    expect(nextOffset('9007199254740992')).toBe('9007199254740993');
    expect(addOffset('9223372036854775800', 7)).toBe('9223372036854775807');
  });

  it('computes lag from the high watermark and never returns a negative lag', () => {
    expect(consumerLag('100', '40')).toBe(60);
    expect(consumerLag('100', '100')).toBe(0);
    expect(consumerLag('100', '120')).toBe(0);
  });
});

describe('assignOffsets', () => {
  it('gives message i of a partition baseOffset + i, in send order, per topic and partition', () => {
    const sent = [
      { topic: 'a', partition: 0 },
      { topic: 'a', partition: 1 },
      { topic: 'a', partition: 0 },
      { topic: 'b', partition: 0 },
      { topic: 'a', partition: 0 },
      { topic: 'a', partition: 1 },
    ];
    const acks = [
      { topicName: 'a', partition: 0, baseOffset: '10' },
      { topicName: 'a', partition: 1, baseOffset: '5' },
      { topicName: 'b', partition: 0, baseOffset: '9007199254740992' },
    ];
    expect(assignOffsets(sent, acks)).toEqual([
      { partition: 0, offset: '10' },
      { partition: 1, offset: '5' },
      { partition: 0, offset: '11' },
      { partition: 0, offset: '9007199254740992' },
      { partition: 0, offset: '12' },
      { partition: 1, offset: '6' },
    ]);
  });

  it('omits what kafkajs did not report', () => {
    const sent = [
      { topic: 'a', partition: undefined },
      { topic: 'a', partition: 2 },
      { topic: 'a', partition: 3 },
    ];
    const acks = [{ topicName: 'a', partition: 3 }];
    expect(assignOffsets(sent, acks)).toEqual([{}, { partition: 2 }, { partition: 3 }]);
  });
});
