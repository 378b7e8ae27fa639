import { InvalidEventError, type LikeEvent } from '@hyperscale/platform';
import { describe, expect, it } from 'vitest';
import type { OffsetEvent } from '../offsets.js';
import {
  collapseLikes,
  isSuperseded,
  likeKey,
  planLikes,
  toSqlDatetime,
  type FallbackMark,
  type LikeIntent,
} from './like-collapse.js';

let seq = 0;
function ev(offset: number, type: 'like' | 'unlike', postId: string, userId: string): OffsetEvent<LikeEvent> {
  seq += 1;
  const at = new Date(Date.UTC(2026, 0, 1, 0, 0, 0, offset)).toISOString();
  return { partition: 0, offset: String(offset), event: { eventId: `e${seq}`, type, postId, userId, at } };
}
const at = (offset: number): string => new Date(Date.UTC(2026, 0, 1, 0, 0, 0, offset)).toISOString();

/** Reference semantics: apply events one by one to a set of rows (offset order). */
function sequential(
  start: ReadonlyMap<string, string>,
  events: readonly OffsetEvent<LikeEvent>[],
): Map<string, string> {
  const rows = new Map(start);
  for (const { event } of [...events].sort((a, b) => Number(a.offset) - Number(b.offset))) {
    const key = likeKey(event.postId, event.userId);
    if (event.type === 'like' && !rows.has(key)) rows.set(key, event.at);
    if (event.type === 'unlike') rows.delete(key);
  }
  return rows;
}

/** Collapse + plan applied to the same set of rows. */
function collapsed(start: ReadonlyMap<string, string>, events: readonly OffsetEvent<LikeEvent>[]) {
  const { intents } = collapseLikes(events);
  const plan = planLikes(intents, new Set(start.keys()));
  const rows = new Map(start);
  for (const i of plan.inserts) rows.set(likeKey(i.postId, i.userId), i.at);
  for (const d of plan.deletes) rows.delete(likeKey(d.postId, d.userId));
  for (const r of plan.refreshes) rows.set(likeKey(r.postId, r.userId), r.at);
  return { rows, plan };
}

describe('collapseLikes', () => {
  it('keeps the last event per (post, user) and counts the absorbed ones', () => {
    const { intents, collapsed: absorbed } = collapseLikes([
      ev(1, 'like', 'p1', 'u1'),
      ev(2, 'unlike', 'p1', 'u1'),
      ev(3, 'like', 'p2', 'u1'),
      ev(4, 'like', 'p1', 'u2'),
      ev(5, 'like', 'p1', 'u1'),
    ]);
    expect(absorbed).toBe(2);
    expect(intents.map((i) => [i.postId, i.userId, i.liked, i.offset])).toEqual([
      ['p1', 'u1', true, '5'],
      ['p1', 'u2', true, '4'],
      ['p2', 'u1', true, '3'],
    ]);
  });

  it('orders by offset numerically, not by arrival or as strings', () => {
    const { intents } = collapseLikes([ev(10, 'unlike', 'p', 'u'), ev(9, 'like', 'p', 'u')]);
    expect(intents).toHaveLength(1);
    expect(intents[0]?.liked).toBe(false);
  });

  it('a repeated like keeps the time of the like that starts the final run', () => {
    const [first] = collapseLikes([
      ev(1, 'like', 'p', 'u'),
      ev(2, 'like', 'p', 'u'),
      ev(3, 'like', 'p', 'u'),
    ]).intents;
    expect(first?.at).toBe(at(1));
    const [second] = collapseLikes([
      ev(1, 'like', 'p', 'u'),
      ev(2, 'unlike', 'p', 'u'),
      ev(3, 'like', 'p', 'u'),
      ev(4, 'like', 'p', 'u'),
    ]).intents;
    expect(second?.at).toBe(at(3));
  });

  it('an unlike followed by a like replaces an existing row (new time), a like run alone does not', () => {
    const [a] = collapseLikes([
      ev(1, 'unlike', 'p', 'u'),
      ev(2, 'like', 'p', 'u'),
      ev(3, 'like', 'p', 'u'),
    ]).intents;
    expect(a).toMatchObject({ liked: true, replaces: true, at: at(2) });
    const [b] = collapseLikes([ev(1, 'like', 'p', 'u'), ev(2, 'like', 'p', 'u')]).intents;
    expect(b).toMatchObject({ liked: true, replaces: false, at: at(1) });
    const present = new Set([likeKey('p', 'u')]);
    expect(planLikes(a ? [a] : [], present)).toMatchObject({
      refreshes: [a],
      unchanged: 0,
      deltas: new Map(),
    });
    expect(planLikes(b ? [b] : [], present)).toMatchObject({ refreshes: [], unchanged: 1 });
    // absent row: an insert either way
    expect(planLikes(a ? [a] : [], new Set()).inserts).toEqual([a]);
  });

  it('sorts intents by primary key in byte order (uppercase before lowercase)', () => {
    const { intents } = collapseLikes([
      ev(1, 'like', 'b', 'x'),
      ev(2, 'like', 'B', 'x'),
      ev(3, 'like', 'b', 'a'),
    ]);
    expect(intents.map((i) => `${i.postId}/${i.userId}`)).toEqual(['B/x', 'b/a', 'b/x']);
  });

  it('handles an empty batch', () => {
    expect(collapseLikes([])).toEqual({ intents: [], collapsed: 0 });
  });
});

describe('planLikes', () => {
  const intent = (postId: string, userId: string, liked: boolean): LikeIntent => ({
    postId,
    userId,
    liked,
    at: at(0),
    replaces: false,
    offset: '0',
  });

  it('inserts only absent likes, deletes only present unlikes, and counts exactly those', () => {
    const present = new Set([likeKey('p1', 'u1'), likeKey('p1', 'u2'), likeKey('p2', 'u1')]);
    const plan = planLikes(
      [
        intent('p1', 'u1', true), // already liked: unchanged
        intent('p1', 'u2', false), // delete
        intent('p1', 'u3', true), // insert
        intent('p2', 'u1', false), // delete
        intent('p2', 'u9', false), // unlike of nothing: unchanged
        intent('p3', 'u1', true), // insert
      ],
      present,
    );
    expect(plan.inserts.map((i) => `${i.postId}/${i.userId}`)).toEqual(['p1/u3', 'p3/u1']);
    expect(plan.deletes.map((i) => `${i.postId}/${i.userId}`)).toEqual(['p1/u2', 'p2/u1']);
    expect(plan.unchanged).toBe(2);
    // p1: +1 -1 = 0 → no statement for p1 at all
    expect([...plan.deltas]).toEqual([
      ['p2', -1],
      ['p3', 1],
    ]);
  });

  it('changes nothing when every intent is already true', () => {
    const plan = planLikes([intent('p', 'u', true), intent('p', 'v', false)], new Set([likeKey('p', 'u')]));
    expect(plan).toEqual({ inserts: [], deletes: [], refreshes: [], deltas: new Map(), unchanged: 2 });
  });
});

describe('collapse + plan equals applying events one by one', () => {
  // Deterministic pseudo-random sequences over a few posts/users, from various starting states.
  function rng(seed: number): () => number {
    let s = seed >>> 0;
    return () => {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      return s / 2 ** 32;
    };
  }

  it.each([1, 2, 3, 4, 5, 6, 7, 8])('random batch %i', (seed) => {
    const random = rng(seed);
    const start = new Map<string, string>();
    for (let i = 0; i < 6; i += 1) {
      if (random() < 0.5) start.set(likeKey(`p${i % 3}`, `u${i}`), at(-1));
    }
    const events = Array.from({ length: 200 }, (_, i) =>
      ev(
        i,
        random() < 0.6 ? 'like' : 'unlike',
        `p${Math.floor(random() * 3)}`,
        `u${Math.floor(random() * 6)}`,
      ),
    );
    // shuffled delivery must not matter either
    const shuffled = [...events].sort(() => random() - 0.5);
    const expected = sequential(start, events);
    const { rows, plan } = collapsed(start, shuffled);
    expect(rows).toEqual(expected);
    // like_count delta per post = change of COUNT(*) per post
    const countOf = (m: ReadonlyMap<string, string>, post: string) =>
      [...m.keys()].filter((k) => k.startsWith(`${post}\u0000`)).length;
    for (const post of ['p0', 'p1', 'p2']) {
      expect(plan.deltas.get(post) ?? 0).toBe(countOf(expected, post) - countOf(start, post));
    }
  });
});

describe('isSuperseded', () => {
  const marks = new Map<string, FallbackMark>([[likeKey('p', 'u'), { partition: 0, throughOffset: '10' }]]);
  const at = (offset: string, partition = 0, userId = 'u'): OffsetEvent<LikeEvent> => ({
    partition,
    offset,
    event: { eventId: `s${offset}`, type: 'like', postId: 'p', userId, at: '2026-01-01T00:00:00.000Z' },
  });

  it("skips the pair's events up to the mark, inclusive, compared as numbers", () => {
    expect(isSuperseded(at('9'), marks)).toBe(true);
    expect(isSuperseded(at('10'), marks)).toBe(true);
    expect(isSuperseded(at('11'), marks)).toBe(false);
    expect(isSuperseded(at('100'), marks)).toBe(false); // '100' < '10…' as text
  });

  it('leaves other users and other partitions alone', () => {
    expect(isSuperseded(at('1', 0, 'other'), marks)).toBe(false);
    expect(isSuperseded(at('1', 1), marks)).toBe(false);
  });

  it('compares offsets beyond 2^53 exactly', () => {
    const big = new Map([[likeKey('p', 'u'), { partition: 0, throughOffset: '9007199254740993' }]]);
    expect(isSuperseded(at('9007199254740993'), big)).toBe(true);
    expect(isSuperseded(at('9007199254740994'), big)).toBe(false);
  });
});

describe('toSqlDatetime', () => {
  it('renders UTC with milliseconds', () => {
    expect(toSqlDatetime('2026-11-21T10:00:00.123Z')).toBe('2026-11-21 10:00:00.123');
    expect(toSqlDatetime('2026-11-21T12:00:00.5+02:00')).toBe('2026-11-21 10:00:00.500');
  });

  it.each(['yesterday', '0999-12-31T23:59:59.999Z', '+010000-01-01T00:00:00.000Z'])(
    'rejects %s as poison',
    (value) => {
      expect(() => toSqlDatetime(value)).toThrow(InvalidEventError);
    },
  );
});
