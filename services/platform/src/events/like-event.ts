import { ID_REGEX } from './topics.js';

/**
 * A like or unlike as recorded on `likes.events.v1` (key = postId, so one post's events keep their
 * order). The event carries the caller's intended final state, not a delta: applying it twice, or
 * applying it when Redis already had that state, leaves MySQL the same.
 */
export interface LikeEvent {
  /** Unique per request (UUID); lets consumers and fallbacks recognise a repeat. */
  eventId: string;
  type: 'like' | 'unlike';
  userId: string;
  postId: string;
  /** When the service accepted the request, ISO-8601 UTC with milliseconds. */
  at: string;
}

/** A message that can never be applied (malformed JSON, missing or invalid field): dead-letter it. */
export class InvalidEventError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidEventError';
  }
}

export function encodeLikeEvent(event: LikeEvent): Buffer {
  return Buffer.from(JSON.stringify(event));
}

/** Parses and validates a like event; throws {@link InvalidEventError} naming the bad field. */
export function decodeLikeEvent(value: Buffer | string | null): LikeEvent {
  if (value === null) throw new InvalidEventError('message has no value');
  let parsed: unknown;
  try {
    parsed = JSON.parse(value.toString());
  } catch {
    throw new InvalidEventError('message is not JSON');
  }
  if (typeof parsed !== 'object' || parsed === null) throw new InvalidEventError('message is not an object');
  const record = parsed as Record<string, unknown>;
  const { eventId, type, userId, postId, at } = record;
  if (typeof eventId !== 'string' || eventId.length === 0 || eventId.length > 64) {
    throw new InvalidEventError('eventId is missing or invalid');
  }
  if (type !== 'like' && type !== 'unlike') throw new InvalidEventError('type must be like or unlike');
  if (typeof userId !== 'string' || !ID_REGEX.test(userId)) throw new InvalidEventError('userId is invalid');
  if (typeof postId !== 'string' || !ID_REGEX.test(postId)) throw new InvalidEventError('postId is invalid');
  if (typeof at !== 'string' || Number.isNaN(Date.parse(at)))
    throw new InvalidEventError('at is not a timestamp');
  return { eventId, type, userId, postId, at };
}
