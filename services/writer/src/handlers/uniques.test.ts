import { describe, expect, it } from 'vitest';
import { InvalidEventError } from '@hyperscale/platform';
import { decodeUniqueEvent } from './uniques.js';

const valid = {
  eventId: 'e1',
  name: 'dau:web',
  userId: 'alice',
  day: '2026-01-31',
  at: '2026-01-31T23:59:59.000Z',
};

describe('decodeUniqueEvent', () => {
  it('accepts a valid event', () => {
    expect(decodeUniqueEvent(JSON.stringify(valid))).toEqual(valid);
  });
  it.each([
    ['null', null],
    ['not JSON', '{'],
    ['bad user', JSON.stringify({ ...valid, userId: 'a b' })],
    ['bad day', JSON.stringify({ ...valid, day: '2026-1-1' })],
    ['bad name', JSON.stringify({ ...valid, name: '' })],
    ['bad time', JSON.stringify({ ...valid, at: 'soon' })],
  ])('rejects %s', (_, value) => {
    expect(() => decodeUniqueEvent(value)).toThrow(InvalidEventError);
  });
});
