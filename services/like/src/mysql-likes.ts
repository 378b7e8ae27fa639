import type { MysqlExecutor, MysqlPool, MysqlRouter } from '@hyperscale/platform';

/** A post's state as MySQL has it. */
export interface MysqlPostState {
  postId: string;
  count: number;
  liked: boolean;
}

/** Outcome of a synchronous MySQL like/unlike. */
export interface MysqlWriteResult {
  changed: boolean;
  count: number;
}

/** A consistent snapshot of one post for warming: every liker and the stored count. */
export interface PostSnapshot {
  userIds: string[];
  storedCount: number;
}

const SNAPSHOT_PAGE = 5_000;

/** What a fallback write records besides the like, so the writer skips what it supersedes. */
export interface FallbackRecords {
  /**
   * The event of this request that Kafka may still append (a send that timed out): recorded in
   * `fallback_events`, and the writer skips it when it lands.
   */
  sentEventId?: string;
  /**
   * Where the post's events stood in Kafka before this request: the user's events of the post up
   * to there (acknowledged, maybe not applied yet) are recorded as superseded in
   * `like_fallback_marks` (the newest position wins), and the writer skips them.
   */
  supersedes?: { partition: number; offset: string } | undefined;
}

/**
 * Likes or unlikes in ONE transaction on the primary, idempotently: INSERT IGNORE / DELETE on
 * `like_records` and a `post_stats` delta only when a row really changed (affectedRows), so a
 * repeat changes nothing. `records` (see {@link FallbackRecords}) keep events that Kafka holds or
 * may still append from undoing this request when the writer applies them later (a like that
 * hung or was not applied yet, then an unlike through this path). They are written last: the
 * writer re-checks them with locking reads at the end of its batch, and this transaction takes no
 * other lock after them, so neither can wait on the other in a cycle.
 * The caller becomes sticky (its next reads go to the primary). Returns the new count.
 */
export async function mysqlSetLiked(
  router: MysqlRouter,
  userId: string,
  postId: string,
  liked: boolean,
  records: FallbackRecords = {},
): Promise<MysqlWriteResult> {
  return router.write(
    async (tx) => {
      const changed = liked
        ? (
            await tx.execute(
              'INSERT IGNORE INTO like_records (post_id, user_id, created_at) VALUES (?, ?, ?)',
              [postId, userId, new Date()],
            )
          ).affectedRows === 1
        : (await tx.execute('DELETE FROM like_records WHERE post_id = ? AND user_id = ?', [postId, userId]))
            .affectedRows === 1;
      if (changed) {
        await tx.execute(
          'INSERT INTO post_stats (post_id, like_count) VALUES (?, ?) ON DUPLICATE KEY UPDATE like_count = like_count + VALUES(like_count)',
          [postId, liked ? 1 : -1],
        );
      }
      const [row] = await tx.select<{ like_count: string }>(
        'SELECT like_count FROM post_stats WHERE post_id = ? LOCK IN SHARE MODE',
        [postId],
      );
      if (records.sentEventId !== undefined)
        await tx.execute('INSERT IGNORE INTO fallback_events (event_id) VALUES (?)', [records.sentEventId]);
      if (records.supersedes !== undefined) {
        const { partition, offset } = records.supersedes;
        // Assignments run left to right: through_offset must still see the old partition.
        await tx.execute(
          `INSERT INTO like_fallback_marks (post_id, user_id, kafka_partition, through_offset) VALUES (?, ?, ?, ?)
           ON DUPLICATE KEY UPDATE
             through_offset = IF(kafka_partition = VALUES(kafka_partition), GREATEST(through_offset, VALUES(through_offset)), VALUES(through_offset)),
             kafka_partition = VALUES(kafka_partition),
             created_at = CURRENT_TIMESTAMP(6)`,
          [postId, userId, partition, offset],
        );
      }
      return { changed, count: row === undefined ? 0 : Number(row.like_count) };
    },
    { callerId: userId },
  );
}

/**
 * Counts (and, with a user, membership) of `postIds` through the router: the replica unless the
 * caller wrote recently, the replica lags or is down. Posts without a row count 0. Order follows
 * `postIds`.
 */
export async function mysqlReadStates(
  router: MysqlRouter,
  userId: string | undefined,
  postIds: readonly string[],
): Promise<MysqlPostState[]> {
  if (postIds.length === 0) return [];
  const marks = postIds.map(() => '?').join(', ');
  const options = { callerId: userId };
  const [counts, likes] = await Promise.all([
    router.readQuery<{ post_id: string; like_count: string }>(
      `SELECT post_id, like_count FROM post_stats WHERE post_id IN (${marks})`,
      [...postIds],
      options,
    ),
    userId === undefined
      ? Promise.resolve({ rows: [] as { post_id: string }[] })
      : router.readQuery<{ post_id: string }>(
          `SELECT post_id FROM like_records WHERE user_id = ? AND post_id IN (${marks})`,
          [userId, ...postIds],
          options,
        ),
  ]);
  const countOf = new Map(counts.rows.map((row) => [row.post_id, Number(row.like_count)]));
  const liked = new Set(likes.rows.map((row) => row.post_id));
  return postIds.map((postId) => ({ postId, count: countOf.get(postId) ?? 0, liked: liked.has(postId) }));
}

/**
 * Every liker of `postId` and its `post_stats.like_count`, read in ONE consistent snapshot on the
 * primary (`START TRANSACTION WITH CONSISTENT SNAPSHOT`, keyset pages of 5000), so a warm never
 * mixes two moments of the writer's progress.
 */
export async function mysqlSnapshot(primary: MysqlPool, postId: string): Promise<PostSnapshot> {
  return primary.withConnection(async (conn) => {
    await conn.unprepared('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
    try {
      const userIds: string[] = [];
      let after = '';
      for (;;) {
        const page = await conn.select<{ user_id: string }>(
          'SELECT user_id FROM like_records WHERE post_id = ? AND user_id > ? ORDER BY user_id LIMIT ?',
          [postId, after, SNAPSHOT_PAGE],
        );
        for (const row of page) userIds.push(row.user_id);
        const last = page.at(-1);
        if (page.length < SNAPSHOT_PAGE || last === undefined) break;
        after = last.user_id;
      }
      const [stats] = await conn.select<{ like_count: string }>(
        'SELECT like_count FROM post_stats WHERE post_id = ?',
        [postId],
      );
      return { userIds, storedCount: stats === undefined ? 0 : Number(stats.like_count) };
    } finally {
      await conn.unprepared('COMMIT').catch(() => conn.destroy());
    }
  });
}

/** Reads nothing but proves the primary answers (readiness). */
export async function mysqlPing(executor: MysqlExecutor): Promise<void> {
  await executor.select('SELECT 1 AS ok');
}
