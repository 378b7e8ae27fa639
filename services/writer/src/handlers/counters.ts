/**
 * The counters handler: `counters.deltas.v1` → `counters`, summing the batch's deltas per name into
 * one set-based upsert (DESIGN §2 "Writer": per counter the deltas sum), so a hot counter costs one
 * row update per batch instead of one per increment.
 */
import { COUNTER_NAME_REGEX, InvalidEventError, TOPICS, type MysqlExecutor } from '@hyperscale/platform';
import type { OffsetEvent } from '../offsets.js';
import type { ApplyStats, TopicHandler } from '../pipeline.js';

/** A delta as the counter service produces it (key = name). */
export interface CounterDeltaEvent {
  eventId: string;
  name: string;
  delta: number;
  at: string;
}

/** Largest |delta| of one event (the API accepts 1..1e9). */
export const MAX_ABS_DELTA = 1_000_000_000;

const NAME = 'VARCHAR(200) CHARACTER SET ascii COLLATE ascii_bin';
const EVENT_ID = 'VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin';
/** Events of the batch that a fallback already applied in MySQL (recorded in the same transaction). */
const SELECT_FALLBACK = `SELECT f.event_id FROM JSON_TABLE(?, '$[*]' COLUMNS (e ${EVENT_ID} PATH '$')) AS j STRAIGHT_JOIN fallback_events AS f ON f.event_id = j.e`;
const UPSERT = `INSERT INTO counters (name, value) SELECT j.n, j.d FROM JSON_TABLE(?, '$[*]' COLUMNS (n ${NAME} PATH '$[0]', d BIGINT PATH '$[1]')) AS j ON DUPLICATE KEY UPDATE value = value + VALUES(value)`;

/**
 * Parses and validates a delta event.
 * @throws InvalidEventError naming the bad field (the message is dead-lettered).
 */
export function decodeCounterDelta(value: string | null): CounterDeltaEvent {
  if (value === null) throw new InvalidEventError('message has no value');
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw new InvalidEventError('message is not JSON');
  }
  if (typeof parsed !== 'object' || parsed === null) throw new InvalidEventError('message is not an object');
  const { eventId, name, delta, at } = parsed as Record<string, unknown>;
  if (typeof eventId !== 'string' || eventId.length === 0 || eventId.length > 64)
    throw new InvalidEventError('eventId is missing or invalid');
  if (typeof name !== 'string' || !COUNTER_NAME_REGEX.test(name))
    throw new InvalidEventError('name is invalid');
  if (
    typeof delta !== 'number' ||
    !Number.isSafeInteger(delta) ||
    delta === 0 ||
    Math.abs(delta) > MAX_ABS_DELTA
  )
    throw new InvalidEventError('delta must be a non-zero integer within ±1e9');
  if (typeof at !== 'string' || Number.isNaN(Date.parse(at)))
    throw new InvalidEventError('at is not a timestamp');
  return { eventId, name, delta, at };
}

/**
 * Sums the deltas per name (skipping `skip`ped event ids), names in sorted order so concurrent
 * transactions lock rows in the same order. Pure.
 */
export function sumDeltas(
  events: readonly OffsetEvent<CounterDeltaEvent>[],
  skip: ReadonlySet<string> = new Set(),
): [string, number][] {
  const sums = new Map<string, number>();
  for (const { event } of events) {
    if (skip.has(event.eventId)) continue;
    sums.set(event.name, (sums.get(event.name) ?? 0) + event.delta);
  }
  return [...sums].filter(([, d]) => d !== 0).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * Applies a batch: drops events a fallback already applied (their id is in `fallback_events`),
 * then adds each name's summed delta with ONE multi-row upsert. At most two statements per batch.
 */
export async function applyCounterDeltas(
  conn: MysqlExecutor,
  events: readonly OffsetEvent<CounterDeltaEvent>[],
): Promise<ApplyStats> {
  if (events.length === 0) return { collapsed: 0, unchanged: 0, rowsChanged: 0 };
  const recorded = await conn.select<{ event_id: string }>(SELECT_FALLBACK, [
    JSON.stringify(events.map((e) => e.event.eventId)),
  ]);
  const skip = new Set(recorded.map((r) => r.event_id));
  const sums = sumDeltas(events, skip);
  if (sums.length > 0) await conn.execute(UPSERT, [JSON.stringify(sums)]);
  return {
    collapsed: events.length - skip.size - sums.length,
    unchanged: 0,
    superseded: skip.size,
    rowsChanged: sums.length,
  };
}

/** Options of {@link countersHandler}. */
export interface CountersHandlerOptions {
  /** Topic to consume (default `counters.deltas.v1`; tests use their own). */
  topic?: string;
}

/** The counters {@link TopicHandler}. */
export function countersHandler(options: CountersHandlerOptions = {}): TopicHandler<CounterDeltaEvent> {
  return {
    topic: options.topic ?? TOPICS.counters,
    decode: decodeCounterDelta,
    apply: applyCounterDeltas,
    // Sums per name: the order of events does not matter at all.
    mergePartitions: true,
  };
}
