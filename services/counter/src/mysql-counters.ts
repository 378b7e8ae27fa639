import type { MysqlExecutor, MysqlPool, MysqlRouter } from '@hyperscale/platform';

/**
 * Applies one delta on the primary in ONE transaction, exactly once per `eventId`: the id goes to
 * `fallback_events` (plain INSERT; a duplicate means an earlier attempt committed, so the delta is
 * not added again) together with the upsert of `counters`. The writer skips events recorded in
 * `fallback_events`, so a Kafka send that timed out here but landed later is not applied twice.
 * Returns the counter's value after the transaction.
 */
export async function mysqlApplyDelta(
  router: MysqlRouter,
  name: string,
  delta: number,
  eventId: string,
): Promise<number> {
  return router.write(async (tx) => {
    const recorded = await tx.execute('INSERT IGNORE INTO fallback_events (event_id) VALUES (?)', [eventId]);
    if (recorded.affectedRows === 1) {
      await tx.execute(
        'INSERT INTO counters (name, value) VALUES (?, ?) ON DUPLICATE KEY UPDATE value = value + VALUES(value)',
        [name, delta],
      );
    }
    const [row] = await tx.select<{ value: string }>('SELECT value FROM counters WHERE name = ?', [name]);
    return row === undefined ? 0 : Number(row.value);
  });
}

/**
 * Values of `names` read on the PRIMARY (a warm or a read while a shard is down must see every
 * delta the writer or a fallback committed; the replica may lag). Missing names are 0.
 */
export async function mysqlValues(
  primary: MysqlExecutor,
  names: readonly string[],
): Promise<Map<string, number>> {
  const values = new Map<string, number>();
  if (names.length === 0) return values;
  const rows = await primary.select<{ name: string; value: string }>(
    `SELECT name, value FROM counters WHERE name IN (${names.map(() => '?').join(', ')})`,
    [...names],
  );
  for (const row of rows) values.set(row.name, Number(row.value));
  return values;
}

/** Reads nothing but proves the primary answers (readiness). */
export async function mysqlPing(pool: MysqlPool): Promise<void> {
  await pool.select('SELECT 1 AS ok');
}
