import { describe, expect, it } from 'vitest';
import { decodeLikeEvent, encodeLikeEvent, InvalidEventError, type LikeEvent } from './like-event.js';

const event: LikeEvent = {
  eventId: '0f8b8f5e-2c55-4d8e-9d4e-0c1c6a3f2f10',
  type: 'like',
  userId: 'alice',
  postId: 'post-1',
  at: '2026-11-21T10:00:00.000Z',
};

describe('like events', () => {
  it('round-trips', () => {
    expect(decodeLikeEvent(encodeLikeEvent(event))).toEqual(event);
  });

  it.each([
    ['not json', 'message is not JSON'],
    [JSON.stringify({ ...event, type: 'love' }), 'type must be like or unlike'],
    [JSON.stringify({ ...event, userId: 'bad id' }), 'userId is invalid'],
    [JSON.stringify({ ...event, postId: 'p'.repeat(65) }), 'postId is invalid'],
    [JSON.stringify({ ...event, at: 'yesterday' }), 'at is not a timestamp'],
    [JSON.stringify({ ...event, eventId: '' }), 'eventId is missing or invalid'],
  ])('rejects %s', (raw, message) => {
    expect(() => decodeLikeEvent(raw)).toThrow(InvalidEventError);
    expect(() => decodeLikeEvent(raw)).toThrow(message);
  });

  it('ignores unknown fields (forward compatible)', () => {
    expect(decodeLikeEvent(JSON.stringify({ ...event, extra: 1 }))).toEqual(event);
  });
});
