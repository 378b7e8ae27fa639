/**
 * The likes handler: `likes.events.v1` → `like_records` + `post_stats`, keeping
 * `post_stats.like_count = COUNT(*)` of the post's `like_records` (DESIGN §6 invariant 2).
 */
import { decodeLikeEvent, TOPICS, type LikeEvent, type MysqlExecutor } from '@hyperscale/platform';
import { ApplyConflictError } from '../errors.js';
import type { OffsetEvent } from '../offsets.js';
import type { ApplyStats, TopicHandler } from '../pipeline.js';
import {
  collapseLikes,
  isSuperseded,
  likeKey,
  planLikes,
  toSqlDatetime,
  type FallbackMark,
  type LikeIntent,
} from './like-collapse.js';

// Ids are ASCII with binary collation in the schema; JSON_TABLE columns must say so too, or the
// comparison is done in utf8mb4 and the primary key cannot be used. STRAIGHT_JOIN keeps the small
// JSON list as the driving table (one primary-key lookup per pair) whatever the statistics say.
const ID = 'VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin';
const PAIRS = `JSON_TABLE(?, '$[*]' COLUMNS (p ${ID} PATH '$[0]', u ${ID} PATH '$[1]')) AS j`;
const TIMED_PAIRS = `JSON_TABLE(?, '$[*]' COLUMNS (p ${ID} PATH '$[0]', u ${ID} PATH '$[1]', t DATETIME(6) PATH '$[2]')) AS j`;

/**
 * Events a fallback of the like service already applied (their id is in `fallback_events`): a send
 * that timed out and landed later. Applied now, such an event could undo a request the user made
 * after it and had acknowledged through the fallback (a like that hung, then an unlike).
 */
const SELECT_FALLBACK = `SELECT f.event_id FROM JSON_TABLE(?, '$[*]' COLUMNS (e ${ID} PATH '$')) AS j STRAIGHT_JOIN fallback_events AS f ON f.event_id = j.e`;
/** Fallback writes that supersede the pair's older events (`like_fallback_marks`). */
const SELECT_MARKS = `SELECT m.post_id, m.user_id, m.kafka_partition, m.through_offset FROM ${PAIRS} STRAIGHT_JOIN like_fallback_marks AS m ON m.post_id = j.p AND m.user_id = j.u`;
/**
 * The same two lookups as locking reads, as the batch's last statements. Under READ COMMITTED a
 * fallback can commit between the first, plain reads and the row changes: a locking read waits
 * for a fallback still in flight and sees one that committed, and the batch then re-runs.
 */
const RECHECK_FALLBACK = `${SELECT_FALLBACK} LOCK IN SHARE MODE`;
const RECHECK_MARKS = `${SELECT_MARKS} LOCK IN SHARE MODE`;
/** Existing rows among the batch's pairs, locked until COMMIT so nobody deletes them meanwhile. */
const SELECT_PRESENT = `SELECT r.post_id, r.user_id FROM ${PAIRS} STRAIGHT_JOIN like_records AS r ON r.post_id = j.p AND r.user_id = j.u FOR UPDATE`;
/** Plain INSERT, not IGNORE: a row inserted concurrently must fail the transaction, not be counted. */
const INSERT_LIKES = `INSERT INTO like_records (post_id, user_id, created_at) SELECT j.p, j.u, j.t FROM ${TIMED_PAIRS}`;
const DELETE_LIKES = `DELETE r FROM ${PAIRS} STRAIGHT_JOIN like_records AS r ON r.post_id = j.p AND r.user_id = j.u`;
/** Unlike + like of an existing row within one batch: same row, new time (as delete + insert would). */
const REFRESH_LIKES = `UPDATE ${TIMED_PAIRS} STRAIGHT_JOIN like_records AS r ON r.post_id = j.p AND r.user_id = j.u SET r.created_at = j.t`;
const UPSERT_COUNTS = `INSERT INTO post_stats (post_id, like_count) SELECT j.p, j.d FROM JSON_TABLE(?, '$[*]' COLUMNS (p ${ID} PATH '$[0]', d BIGINT PATH '$[1]')) AS j ON DUPLICATE KEY UPDATE like_count = like_count + VALUES(like_count)`;

/**
 * Parses a like event and also checks that its time fits a DATETIME, so an event that decodes is
 * an event that can be stored (otherwise it would fail inside the transaction instead).
 * @throws InvalidEventError naming the bad field.
 */
export function decodeStorableLikeEvent(value: string | null): LikeEvent {
  const event = decodeLikeEvent(value);
  toSqlDatetime(event.at);
  return event;
}

/**
 * Applies a batch: drop the events a fallback already applied (`fallback_events`) or superseded
 * (`like_fallback_marks`), collapse to one intent per (post, user) (the last event wins), lock and
 * read which pairs exist, insert absent likes, delete present unlikes, and add to each post's count
 * exactly the rows inserted minus the rows deleted. Repeated likes, unlikes of nothing, and rows
 * a fallback path already wrote change nothing. The result equals applying the events one by one
 * (`created_at` included). At most nine statements per batch whatever its size.
 * @throws ApplyConflictError when a statement changed fewer rows than the locks guarantee, or a
 *   fallback committed meanwhile an event this batch applied must now be skipped for.
 */
export async function applyLikes(
  conn: MysqlExecutor,
  events: readonly OffsetEvent<LikeEvent>[],
): Promise<ApplyStats> {
  if (events.length === 0) return { collapsed: 0, unchanged: 0, rowsChanged: 0 };
  const { skipped, kept } = await withoutFallbackEvents(conn, events, false);
  const { intents, collapsed } = collapseLikes(kept);
  if (intents.length === 0) return { collapsed, unchanged: 0, superseded: skipped, rowsChanged: 0 };
  const rows = await conn.select<{ post_id: string; user_id: string }>(SELECT_PRESENT, [
    JSON.stringify(intents.map((i) => [i.postId, i.userId])),
  ]);
  const present = new Set(rows.map((r) => likeKey(r.post_id, r.user_id)));
  const plan = planLikes(intents, present);
  let rowsChanged = 0;
  if (plan.inserts.length > 0) {
    const result = await conn.execute(INSERT_LIKES, [
      JSON.stringify(plan.inserts.map((i) => [i.postId, i.userId, toSqlDatetime(i.at)])),
    ]);
    expectRows('insert into like_records', result.affectedRows, plan.inserts);
    rowsChanged += result.affectedRows;
  }
  if (plan.deletes.length > 0) {
    const result = await conn.execute(DELETE_LIKES, [
      JSON.stringify(plan.deletes.map((i) => [i.postId, i.userId])),
    ]);
    expectRows('delete from like_records', result.affectedRows, plan.deletes);
    rowsChanged += result.affectedRows;
  }
  if (plan.refreshes.length > 0) {
    // Locked rows, so all of them match; affectedRows may still be lower where the time is equal.
    const result = await conn.execute(REFRESH_LIKES, [
      JSON.stringify(plan.refreshes.map((i) => [i.postId, i.userId, toSqlDatetime(i.at)])),
    ]);
    rowsChanged += result.affectedRows;
  }
  if (plan.deltas.size > 0) {
    await conn.execute(UPSERT_COUNTS, [JSON.stringify([...plan.deltas])]);
    rowsChanged += plan.deltas.size;
  }
  // Only pairs whose rows this batch changed can be undone by it; the others' rows stay locked
  // (SELECT_PRESENT) or untouched, so a fallback on them is ordered after this batch anyway.
  const changed = new Set(
    [...plan.inserts, ...plan.deletes, ...plan.refreshes].map((i) => likeKey(i.postId, i.userId)),
  );
  if (changed.size > 0) {
    const applied = kept.filter((e) => changed.has(likeKey(e.event.postId, e.event.userId)));
    const late = await withoutFallbackEvents(conn, applied, true);
    if (late.skipped > 0) {
      throw new ApplyConflictError(`${late.skipped} events were taken over by a like fallback meanwhile`);
    }
  }
  return { collapsed, unchanged: plan.unchanged, superseded: skipped, rowsChanged };
}

/**
 * Splits `events` into those a fallback of the like service took over (its event id is in
 * `fallback_events`, or a `like_fallback_marks` row supersedes it) and the rest. `locking`: read
 * with shared locks (the recheck at the end of a batch).
 */
async function withoutFallbackEvents(
  conn: MysqlExecutor,
  events: readonly OffsetEvent<LikeEvent>[],
  locking: boolean,
): Promise<{ skipped: number; kept: readonly OffsetEvent<LikeEvent>[] }> {
  const recorded = await conn.select<{ event_id: string }>(locking ? RECHECK_FALLBACK : SELECT_FALLBACK, [
    JSON.stringify(events.map((e) => e.event.eventId)),
  ]);
  const pairs = new Map(events.map((e) => [likeKey(e.event.postId, e.event.userId), e.event] as const));
  const markRows = await conn.select<{
    post_id: string;
    user_id: string;
    kafka_partition: number;
    through_offset: string;
  }>(locking ? RECHECK_MARKS : SELECT_MARKS, [
    JSON.stringify([...pairs.values()].map((e) => [e.postId, e.userId])),
  ]);
  if (recorded.length === 0 && markRows.length === 0) return { skipped: 0, kept: events };
  const ids = new Set(recorded.map((r) => r.event_id));
  const marks = new Map<string, FallbackMark>(
    markRows.map((r) => [
      likeKey(r.post_id, r.user_id),
      { partition: Number(r.kafka_partition), throughOffset: String(r.through_offset) },
    ]),
  );
  const kept = events.filter((e) => !ids.has(e.event.eventId) && !isSuperseded(e, marks));
  return { skipped: events.length - kept.length, kept };
}

function expectRows(what: string, affected: number, planned: readonly LikeIntent[]): void {
  if (affected !== planned.length) {
    throw new ApplyConflictError(`${what} changed ${affected} rows, planned ${planned.length}`);
  }
}

/** Options of {@link likesHandler}. */
export interface LikesHandlerOptions {
  /** Topic to consume (default `likes.events.v1`; tests use their own). */
  topic?: string;
}

/** The likes {@link TopicHandler}. */
export function likesHandler(options: LikesHandlerOptions = {}): TopicHandler<LikeEvent> {
  return {
    topic: options.topic ?? TOPICS.likes,
    decode: decodeStorableLikeEvent,
    apply: applyLikes,
  };
}
