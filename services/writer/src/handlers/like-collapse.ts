/**
 * Pure logic of the likes handler: collapsing a partition batch to one intent per (post, user) and
 * planning the row changes that bring MySQL to those intents. No I/O here, so it is table-tested.
 */
import { InvalidEventError, type LikeEvent } from '@hyperscale/platform';
import type { OffsetEvent } from '../offsets.js';

/** The state a batch leaves one (post, user) pair in. */
export interface LikeIntent {
  readonly postId: string;
  readonly userId: string;
  readonly liked: boolean;
  /**
   * For `liked`: the `at` of the like that starts the batch's final run of likes — the one that
   * creates the row when it is absent, exactly as applying the events one by one would (a repeated
   * like is a no-op and keeps the first like's time). For an unlike: the unlike's `at` (unused).
   */
  readonly at: string;
  /**
   * For `liked`: an unlike of the pair precedes the final run of likes in this batch. Applied one
   * by one, that unlike would delete an existing row and the like re-create it with a new time;
   * so an existing row gets its `created_at` refreshed (its count is unchanged).
   */
  readonly replaces: boolean;
  /** Offset of the last event of the pair (the one that decided `liked`). */
  readonly offset: string;
}

/** Result of {@link collapseLikes}. */
export interface CollapsedLikes {
  /** One intent per pair, sorted by (postId, userId) in byte order = the primary key's order. */
  readonly intents: LikeIntent[];
  /** Events absorbed by a later event of the same pair. */
  readonly collapsed: number;
}

/** Map key of a (post, user) pair. Ids never contain NUL (`[A-Za-z0-9_.:-]`), so it is unambiguous. */
export function likeKey(postId: string, userId: string): string {
  return `${postId}\u0000${userId}`;
}

function compareOffsets(a: string, b: string): number {
  const x = BigInt(a);
  const y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Collapses events so that the result equals applying them one by one in offset order: per
 * (post, user) the last event decides liked/unliked. The input need not be sorted (it is sorted by
 * offset first; kafkajs delivers it sorted anyway). Output order is the primary key order, so
 * concurrent transactions lock rows in the same order and cannot deadlock on each other.
 */
export function collapseLikes(events: readonly OffsetEvent<LikeEvent>[]): CollapsedLikes {
  const ordered = [...events].sort((a, b) => compareOffsets(a.offset, b.offset));
  const byPair = new Map<string, LikeIntent>();
  for (const { offset, event } of ordered) {
    const key = likeKey(event.postId, event.userId);
    const previous = byPair.get(key);
    const liked = event.type === 'like';
    // A like that follows a like of the same batch keeps the earlier like's time (no-op semantics);
    // a like that follows an unlike starts a new run that replaces whatever row existed.
    const continues = liked && previous?.liked === true;
    const at = continues ? previous.at : event.at;
    const replaces = liked && (continues ? previous.replaces : previous !== undefined);
    byPair.set(key, { postId: event.postId, userId: event.userId, liked, at, replaces, offset });
  }
  const intents = [...byPair.values()].sort(
    (a, b) => compareIds(a.postId, b.postId) || compareIds(a.userId, b.userId),
  );
  return { intents, collapsed: events.length - intents.length };
}

/**
 * A fallback write of the like service (`like_fallback_marks`): the pair's events in `partition`
 * up to `throughOffset` are superseded by a newer request that went to MySQL directly.
 */
export interface FallbackMark {
  readonly partition: number;
  readonly throughOffset: string;
}

/**
 * True when `marks` (by {@link likeKey}) says a fallback write superseded `e`: applied now, the
 * older event would undo that newer request. Offsets only compare within one partition.
 */
export function isSuperseded(e: OffsetEvent<LikeEvent>, marks: ReadonlyMap<string, FallbackMark>): boolean {
  const mark = marks.get(likeKey(e.event.postId, e.event.userId));
  return (
    mark !== undefined && mark.partition === e.partition && compareOffsets(e.offset, mark.throughOffset) <= 0
  );
}

/** Row changes that bring MySQL from `present` to the intents. */
export interface LikePlan {
  /** Absent pairs to like: rows to insert. */
  readonly inserts: LikeIntent[];
  /** Present pairs to unlike: rows to delete. */
  readonly deletes: LikeIntent[];
  /** Present pairs unliked and liked again within the batch: `created_at` to refresh, count unchanged. */
  readonly refreshes: LikeIntent[];
  /** Non-zero like_count change per post (+1 per insert, -1 per delete), posts in key order. */
  readonly deltas: Map<string, number>;
  /** Intents already true in MySQL (like of a liked pair, unlike of an absent one): nothing to do. */
  readonly unchanged: number;
}

/**
 * Plans the minimal change: insert only absent likes, delete only present unlikes, and count the
 * delta of each post from exactly those rows — so `post_stats.like_count` moves with `COUNT(*)`
 * however often an intent repeats. `present` holds {@link likeKey}s of the rows that exist.
 */
export function planLikes(intents: readonly LikeIntent[], present: ReadonlySet<string>): LikePlan {
  const inserts: LikeIntent[] = [];
  const deletes: LikeIntent[] = [];
  const refreshes: LikeIntent[] = [];
  const deltas = new Map<string, number>();
  let unchanged = 0;
  for (const intent of intents) {
    const exists = present.has(likeKey(intent.postId, intent.userId));
    if (intent.liked && !exists) inserts.push(intent);
    else if (!intent.liked && exists) deletes.push(intent);
    else {
      if (intent.liked && intent.replaces) refreshes.push(intent);
      else unchanged += 1;
      continue;
    }
    deltas.set(intent.postId, (deltas.get(intent.postId) ?? 0) + (intent.liked ? 1 : -1));
  }
  for (const [postId, delta] of deltas) if (delta === 0) deltas.delete(postId);
  return { inserts, deletes, refreshes, deltas, unchanged };
}

const MIN_YEAR = 1000;
const MAX_YEAR = 9999;

/**
 * An event time as a MySQL `DATETIME(6)` literal in UTC (`YYYY-MM-DD HH:MM:SS.mmm`). `at` is what
 * the like service wrote (ISO-8601); anything `Date` can parse is accepted, but only years
 * 1000–9999 (DATETIME's range): outside it the event could never be stored, so it is poison.
 * @throws InvalidEventError for an unparsable or out-of-range time.
 */
export function toSqlDatetime(at: string): string {
  const ms = Date.parse(at);
  if (Number.isNaN(ms)) throw new InvalidEventError('at is not a timestamp');
  const date = new Date(ms);
  const year = date.getUTCFullYear();
  if (year < MIN_YEAR || year > MAX_YEAR) {
    throw new InvalidEventError(`at is outside the years ${MIN_YEAR}-${MAX_YEAR}`);
  }
  return date.toISOString().replace('T', ' ').replace('Z', '');
}
