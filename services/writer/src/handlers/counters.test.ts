import { describe, expect, it } from 'vitest';
import { InvalidEventError } from '@hyperscale/platform';
import { decodeCounterDelta, sumDeltas, type CounterDeltaEvent } from './counters.js';

const ev = (eventId: string, name: string, delta: number) => ({
  partition: 0,
  offset: '0',
  event: { eventId, name, delta, at: '2026-01-01T00:00:00.000Z' } satisfies CounterDeltaEvent,
});

describe('decodeCounterDelta', () => {
  it('accepts a valid event', () => {
    const e = { eventId: 'e1', name: 'views:a', delta: -3, at: '2026-01-01T00:00:00.000Z' };
    expect(decodeCounterDelta(JSON.stringify(e))).toEqual(e);
  });
  it.each([
    ['null', null],
    ['not JSON', '{'],
    ['zero delta', JSON.stringify({ eventId: 'e', name: 'n', delta: 0, at: '2026-01-01T00:00:00Z' })],
    ['fractional delta', JSON.stringify({ eventId: 'e', name: 'n', delta: 1.5, at: '2026-01-01T00:00:00Z' })],
    ['huge delta', JSON.stringify({ eventId: 'e', name: 'n', delta: 2e9, at: '2026-01-01T00:00:00Z' })],
    ['bad name', JSON.stringify({ eventId: 'e', name: 'a b', delta: 1, at: '2026-01-01T00:00:00Z' })],
    ['bad time', JSON.stringify({ eventId: 'e', name: 'n', delta: 1, at: 'yesterday' })],
  ])('rejects %s', (_, value) => {
    expect(() => decodeCounterDelta(value)).toThrow(InvalidEventError);
  });
});

describe('sumDeltas', () => {
  it('sums per name, sorted, skipping recorded ids and zero sums', () => {
    const events = [
      ev('1', 'b', 2),
      ev('2', 'a', 1),
      ev('3', 'b', 5),
      ev('4', 'c', 1),
      ev('5', 'c', -1),
      ev('6', 'a', 10),
    ];
    expect(sumDeltas(events, new Set(['6']))).toEqual([
      ['a', 1],
      ['b', 7],
    ]);
  });
});
