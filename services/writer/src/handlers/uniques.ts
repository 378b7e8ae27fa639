/**
 * The uniques handler: `uniques.events.v1` → `unique_daily` with INSERT IGNORE, so a user counts
 * once per name and day however often the event repeats (re-delivery, a fallback that already
 * inserted the row, repeated logins).
 */
import {
  COUNTER_NAME_REGEX,
  ID_REGEX,
  InvalidEventError,
  TOPICS,
  type MysqlExecutor,
} from '@hyperscale/platform';
import type { OffsetEvent } from '../offsets.js';
import type { ApplyStats, TopicHandler } from '../pipeline.js';

/** A unique-user event as the counter service produces it (key = name). */
export interface UniqueEvent {
  eventId: string;
  name: string;
  userId: string;
  /** UTC day, YYYY-MM-DD. */
  day: string;
  at: string;
}

const DAY = /^\d{4}-\d{2}-\d{2}$/;
const NAME = 'VARCHAR(200) CHARACTER SET ascii COLLATE ascii_bin';
const ID = 'VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin';
const INSERT = `INSERT IGNORE INTO unique_daily (name, day, user_id) SELECT j.n, j.d, j.u FROM JSON_TABLE(?, '$[*]' COLUMNS (n ${NAME} PATH '$[0]', d DATE PATH '$[1]', u ${ID} PATH '$[2]')) AS j`;

/**
 * Parses and validates a unique event.
 * @throws InvalidEventError naming the bad field (dead-lettered).
 */
export function decodeUniqueEvent(value: string | null): UniqueEvent {
  if (value === null) throw new InvalidEventError('message has no value');
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw new InvalidEventError('message is not JSON');
  }
  if (typeof parsed !== 'object' || parsed === null) throw new InvalidEventError('message is not an object');
  const { eventId, name, userId, day, at } = parsed as Record<string, unknown>;
  if (typeof eventId !== 'string' || eventId.length === 0 || eventId.length > 64)
    throw new InvalidEventError('eventId is missing or invalid');
  if (typeof name !== 'string' || !COUNTER_NAME_REGEX.test(name))
    throw new InvalidEventError('name is invalid');
  if (typeof userId !== 'string' || !ID_REGEX.test(userId)) throw new InvalidEventError('userId is invalid');
  if (typeof day !== 'string' || !DAY.test(day) || Number.isNaN(Date.parse(`${day}T00:00:00Z`)))
    throw new InvalidEventError('day is invalid');
  if (typeof at !== 'string' || Number.isNaN(Date.parse(at)))
    throw new InvalidEventError('at is not a timestamp');
  return { eventId, name, userId, day, at };
}

/** Inserts the batch's distinct (name, day, user) triples in one statement; duplicates are ignored. */
export async function applyUniques(
  conn: MysqlExecutor,
  events: readonly OffsetEvent<UniqueEvent>[],
): Promise<ApplyStats> {
  const triples = new Map<string, [string, string, string]>();
  for (const { event } of events)
    triples.set(`${event.name}\n${event.day}\n${event.userId}`, [event.name, event.day, event.userId]);
  if (triples.size === 0) return { collapsed: 0, unchanged: 0, rowsChanged: 0 };
  const result = await conn.execute(INSERT, [JSON.stringify([...triples.values()])]);
  return {
    collapsed: events.length - triples.size,
    unchanged: triples.size - result.affectedRows,
    rowsChanged: result.affectedRows,
  };
}

/** The uniques {@link TopicHandler}. */
export function uniquesHandler(options: { topic?: string } = {}): TopicHandler<UniqueEvent> {
  return {
    topic: options.topic ?? TOPICS.uniques,
    decode: decodeUniqueEvent,
    apply: applyUniques,
    // A set of (name, day, user): the order of events does not matter at all.
    mergePartitions: true,
  };
}
