/**
 * The likes handler and the like service's fallback writes, against the real MariaDB primary:
 * events a fallback superseded (`like_fallback_marks`) are skipped, in their partition only; and a
 * fallback that commits while a batch runs (READ COMMITTED lets the batch's first reads miss it)
 * makes the batch re-run instead of letting an older event undo the fallback's newer request.
 */
import type { LikeEvent, MysqlConnection } from '@hyperscale/platform';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApplyConflictError } from '../src/errors.js';
import { applyLikes } from '../src/handlers/likes.js';
import type { OffsetEvent } from '../src/offsets.js';
import { createTestBed, type TestBed } from './helpers.js';

let bed: TestBed;
let seq = 0;

beforeAll(async () => {
  bed = await createTestBed('marks', 1);
});
afterAll(async () => {
  await bed?.cleanup();
});

function ev(
  offset: number,
  type: LikeEvent['type'],
  postId: string,
  userId: string,
  partition = 0,
): OffsetEvent<LikeEvent> {
  seq += 1;
  const at = new Date(Date.UTC(2026, 11, 6, 12, 0, 0, seq)).toISOString();
  return { partition, offset: String(offset), event: { eventId: `m-${seq}`, type, postId, userId, at } };
}

/** Runs `fn` in a READ COMMITTED transaction, as the writer's pipeline does. */
async function inBatch<T>(fn: (conn: MysqlConnection) => Promise<T>): Promise<T> {
  return bed.pool.withConnection(async (conn) => {
    await conn.unprepared('SET TRANSACTION ISOLATION LEVEL READ COMMITTED');
    await conn.unprepared('START TRANSACTION');
    try {
      const result = await fn(conn);
      await conn.unprepared('COMMIT');
      return result;
    } catch (err) {
      await conn.unprepared('ROLLBACK');
      throw err;
    }
  });
}

async function mark(postId: string, userId: string, partition: number, through: number): Promise<void> {
  await bed.pool.execute(
    'INSERT INTO like_fallback_marks (post_id, user_id, kafka_partition, through_offset) VALUES (?, ?, ?, ?)',
    [postId, userId, partition, through],
  );
}

async function likers(postId: string): Promise<{ users: string[]; count: number }> {
  const rows = await bed.pool.select<{ user_id: string }>(
    'SELECT user_id FROM like_records WHERE post_id = ? ORDER BY user_id',
    [postId],
  );
  const [stats] = await bed.pool.select<{ like_count: string }>(
    'SELECT like_count FROM post_stats WHERE post_id = ?',
    [postId],
  );
  return { users: rows.map((r) => r.user_id), count: Number(stats?.like_count ?? 0) };
}

describe('like fallback marks', () => {
  it("skips a pair's events at or below its mark in the mark's partition, and nothing else", async () => {
    await mark('post-m', 'alice', 0, 10);
    await mark('post-m', 'carol', 0, 10);
    const stats = await inBatch((conn) =>
      applyLikes(conn, [
        ev(9, 'like', 'post-m', 'alice'), // superseded
        ev(10, 'like', 'post-m', 'alice'), // superseded (at the mark)
        ev(10, 'like', 'post-m', 'bob'), // another user: no mark
      ]),
    );
    expect(stats).toMatchObject({ superseded: 2, unchanged: 0 });
    expect(await likers('post-m')).toEqual({ users: ['bob'], count: 1 });

    await inBatch((conn) =>
      applyLikes(conn, [
        ev(11, 'like', 'post-m', 'alice'), // after the mark: a newer request
        ev(5, 'like', 'post-m', 'carol', 1), // another partition: offsets do not compare
      ]),
    );
    expect(await likers('post-m')).toEqual({ users: ['alice', 'bob', 'carol'], count: 3 });
  });

  it('re-runs a batch when a fallback commits its mark while the batch runs', async () => {
    // The fallback: the user's unlike went to MySQL (nothing to delete yet: the writer had not
    // applied the like), superseding the like event through offset 20. Not committed yet.
    const fallback = await bed.pool.acquire();
    await fallback.unprepared('START TRANSACTION');
    await fallback.execute('DELETE FROM like_records WHERE post_id = ? AND user_id = ?', ['post-r', 'dave']);
    await fallback.execute(
      'INSERT INTO like_fallback_marks (post_id, user_id, kafka_partition, through_offset) VALUES (?, ?, 0, 20)',
      ['post-r', 'dave'],
    );

    let settled = false;
    const batch = inBatch((conn) => applyLikes(conn, [ev(20, 'like', 'post-r', 'dave')])).finally(() => {
      settled = true;
    });
    const outcome = batch.then(
      () => 'applied',
      (err: unknown) => err,
    );
    await new Promise((resolve) => setTimeout(resolve, 500));
    // The batch cannot commit the like while the fallback is open (the fallback's gap lock holds
    // its INSERT; without that, its last, locking read would wait on the uncommitted mark).
    expect(settled).toBe(false);
    await fallback.unprepared('COMMIT');
    fallback.release();
    expect(await outcome).toBeInstanceOf(ApplyConflictError);
    expect(await likers('post-r')).toEqual({ users: [], count: 0 });

    // Re-run (as the pipeline does): the mark is seen at once and the like is skipped.
    const stats = await inBatch((conn) => applyLikes(conn, [ev(20, 'like', 'post-r', 'dave')]));
    expect(stats).toMatchObject({ rowsChanged: 0, superseded: 1 });
    expect(await likers('post-r')).toEqual({ users: [], count: 0 });
  });

  it('re-runs a batch when a fallback records the same event id while the batch runs', async () => {
    const late = ev(30, 'like', 'post-e', 'erin');
    const fallback = await bed.pool.acquire();
    await fallback.unprepared('START TRANSACTION');
    await fallback.execute('INSERT INTO fallback_events (event_id) VALUES (?)', [late.event.eventId]);

    const outcome = inBatch((conn) => applyLikes(conn, [late])).then(
      () => 'applied',
      (err: unknown) => err,
    );
    await new Promise((resolve) => setTimeout(resolve, 300));
    await fallback.unprepared('COMMIT');
    fallback.release();
    expect(await outcome).toBeInstanceOf(ApplyConflictError);
    expect(await likers('post-e')).toEqual({ users: [], count: 0 });
  });
});
