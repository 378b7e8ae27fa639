import type { MysqlExecutor, MysqlPool } from './pool.js';

const DB_NAME_RE = /^[A-Za-z0-9_]{1,64}$/;

/**
 * Quotes a database name for DDL, which cannot take identifiers as bind parameters. Only
 * `[A-Za-z0-9_]{1,64}` is accepted, so the quoted name can never break out of its backticks.
 * @throws RangeError for anything else.
 */
export function quoteDatabaseName(name: string): string {
  if (!DB_NAME_RE.test(name))
    throw new RangeError(`invalid database name ${JSON.stringify(name)} (allowed: [A-Za-z0-9_]{1,64})`);
  return `\`${name}\``;
}

/** The database (path) part of a `mysql://` URL, or '' when there is none. */
export function databaseOfUrl(url: string): string {
  return decodeURIComponent(new URL(url).pathname.replace(/^\//, ''));
}

/** The same `mysql://` URL pointing at another database (credentials, host, query kept). */
export function withDatabase(url: string, database: string): string {
  quoteDatabaseName(database);
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

/** `CREATE DATABASE IF NOT EXISTS` with utf8mb4 defaults; the statement replicates to replicas. */
export async function createDatabase(executor: MysqlExecutor, name: string): Promise<void> {
  await executor.execute(
    `CREATE DATABASE IF NOT EXISTS ${quoteDatabaseName(name)} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`,
  );
}

/** `DROP DATABASE IF EXISTS` (replicates too). */
export async function dropDatabase(executor: MysqlExecutor, name: string): Promise<void> {
  await executor.execute(`DROP DATABASE IF EXISTS ${quoteDatabaseName(name)}`);
}

/** The replica did not reach the primary's position in time. */
export class ReplicaCatchUpTimeoutError extends Error {
  override readonly name = 'ReplicaCatchUpTimeoutError';
}

/**
 * Waits until the replica has applied everything the primary had logged when this was called
 * (primary `@@gtid_binlog_pos`, then `MASTER_GTID_WAIT` on the replica). Use after migrations or
 * test setup that later reads must see on the replica.
 * @throws ReplicaCatchUpTimeoutError after `timeoutMs`.
 */
export async function waitForReplicaCatchUp(
  primary: MysqlPool,
  replica: MysqlPool,
  timeoutMs = 10_000,
): Promise<void> {
  const [row] = await primary.select<{ pos: string | null }>('SELECT @@gtid_binlog_pos AS pos');
  const pos = row?.pos ?? '';
  const [w] = await replica.select<{ w: number | string | null }>(
    'SELECT MASTER_GTID_WAIT(?, ?) AS w',
    [pos, timeoutMs / 1000],
    {
      timeoutMs: timeoutMs + replica.queryTimeoutMs,
    },
  );
  if (w?.w === null || w?.w === undefined || Number(w.w) !== 0) {
    throw new ReplicaCatchUpTimeoutError(
      `replica did not reach primary position ${pos} within ${timeoutMs} ms`,
    );
  }
}
