import { createHash } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mysql from 'mysql2/promise';
import type { Connection } from 'mysql2/promise';
import type { Logger } from 'pino';
import Postgrator from 'postgrator';
import { databaseOfUrl } from './database-admin.js';
import { MysqlMigrationError } from './errors.js';

/** The SQL files shipped with this package (`services/platform/migrations`, also from `dist/`). */
export const defaultMigrationsDir: string = fileURLToPath(new URL('../../migrations/', import.meta.url));

/** Options of {@link migrate}. */
export interface MigrateOptions {
  /** `mysql://user:password@host:port/database` of the PRIMARY; the database must exist. */
  readonly url: string;
  /** Folder of `NNN.do.<name>.sql` files (default {@link defaultMigrationsDir}). */
  readonly migrationsDir?: string;
  /** Version to reach (default: the highest available). Lower than the current version is refused. */
  readonly targetVersion?: number;
  readonly logger: Logger;
  /** Max wait for another process's migration run to finish, in seconds (default 60). */
  readonly lockTimeoutSec?: number;
  /** Connect deadline (default 10 000 ms). */
  readonly connectTimeoutMs?: number;
  /** Deadline of each statement, DDL included (default 300 000 ms). */
  readonly statementTimeoutMs?: number;
}

/** What a {@link migrate} run did. */
export interface MigrateResult {
  readonly database: string;
  readonly fromVersion: number;
  readonly toVersion: number;
  readonly applied: readonly { readonly version: number; readonly name: string }[];
  readonly durationMs: number;
}

/**
 * Brings the database in `url` to `targetVersion` (default: latest) with postgrator 8, version
 * table `schemaversion`, md5 checksums of applied files verified (an edited applied migration
 * fails the run). Safe to call from every process at start-up and concurrently: the whole run
 * holds `GET_LOCK('hyperscale_migrations:<database>')` (per database so unrelated databases do not
 * queue; the lock dies with the session, so a crashed migrator never leaves it held); the others
 * wait up to `lockTimeoutSec`, then find nothing left to do.
 *
 * Migrations are forward-only (no undo scripts): a target below the current version throws.
 * MySQL DDL is not transactional, so a failed file may be half applied; the shipped files use
 * `IF NOT EXISTS` so a re-run completes them.
 *
 * The migration connection is the one place that uses the text protocol with
 * `multipleStatements`: migration files are multi-statement scripts, and postgrator builds its
 * bookkeeping SQL itself from file names and checksums (no external input reaches it).
 * @throws MysqlMigrationError (with `appliedVersions`) on any failure, lock timeout included.
 */
export async function migrate(options: MigrateOptions): Promise<MigrateResult> {
  const started = performance.now();
  const database = databaseOfUrl(options.url);
  if (database === '') throw new MysqlMigrationError('migration URL has no database name', []);
  const dir = options.migrationsDir ?? defaultMigrationsDir;
  const statementTimeoutMs = options.statementTimeoutMs ?? 300_000;
  const lockTimeoutSec = options.lockTimeoutSec ?? 60;
  const logger = options.logger.child({ component: 'mysql-migrate', database });

  let conn: Connection;
  try {
    conn = await mysql.createConnection({
      uri: options.url,
      connectTimeout: options.connectTimeoutMs ?? 10_000,
      multipleStatements: true,
      timezone: 'Z',
      supportBigNumbers: true,
      bigNumberStrings: true,
    });
  } catch (err) {
    throw new MysqlMigrationError(`cannot connect to ${database}: ${errorMessage(err)}`, [], { cause: err });
  }
  const applied: { version: number; name: string }[] = [];
  let locked = false;
  const lockName = migrationLockName(database);
  try {
    await conn.query({ sql: "SET time_zone = '+00:00'", timeout: statementTimeoutMs });
    const [lockRows] = await conn.execute<mysql.RowDataPacket[]>(
      { sql: 'SELECT GET_LOCK(?, ?) AS l', timeout: (lockTimeoutSec + 5) * 1000 },
      [lockName, lockTimeoutSec],
    );
    if (Number(lockRows[0]?.['l']) !== 1) {
      throw new MysqlMigrationError(
        `another migration of ${database} held ${lockName} for more than ${lockTimeoutSec} s`,
        [],
      );
    }
    locked = true;

    const postgrator = new Postgrator({
      migrationPattern: path.join(dir, '*.sql').replaceAll('\\', '/'),
      driver: 'mysql',
      database,
      schemaTable: 'schemaversion',
      validateChecksums: true,
      newline: 'LF',
      execQuery: async (sql: string) => {
        const [rows] = await conn.query({ sql, timeout: statementTimeoutMs });
        return { rows: Array.isArray(rows) ? rows : [] };
      },
      execSqlScript: async (script: string) => {
        await conn.query({ sql: script, timeout: statementTimeoutMs });
      },
    });
    postgrator.on('migration-started', (m) =>
      logger.info({ version: m.version, name: m.name }, 'applying migration'),
    );
    postgrator.on('migration-finished', (m) => applied.push({ version: m.version, name: m.name }));

    const fromVersion = await postgrator.getDatabaseVersion();
    const maxVersion = await postgrator.getMaxVersion();
    if (!Number.isFinite(maxVersion))
      throw new MysqlMigrationError(`no migration files match ${dir}/*.sql`, []);
    const target = options.targetVersion ?? maxVersion;
    if (!Number.isInteger(target) || target < 0)
      throw new MysqlMigrationError(`invalid target version ${target}`, []);
    if (target < fromVersion) {
      throw new MysqlMigrationError(
        `${database} is at version ${fromVersion}; migrations are forward-only, refusing target ${target}`,
        [],
      );
    }
    if (target > maxVersion)
      throw new MysqlMigrationError(
        `target version ${target} is above the highest migration ${maxVersion} in ${dir}`,
        [],
      );
    await postgrator.migrate(String(target));
    const toVersion = await postgrator.getDatabaseVersion();
    const result: MigrateResult = {
      database,
      fromVersion,
      toVersion,
      applied,
      durationMs: Math.round(performance.now() - started),
    };
    logger.info(
      { fromVersion, toVersion, applied: applied.map((m) => m.version), durationMs: result.durationMs },
      applied.length > 0 ? 'migrations applied' : 'schema up to date',
    );
    return result;
  } catch (err) {
    if (err instanceof MysqlMigrationError) throw err;
    throw new MysqlMigrationError(
      `migration of ${database} failed: ${errorMessage(err)}`,
      applied.map((m) => m.version),
      { cause: err },
    );
  } finally {
    if (locked) {
      await conn
        .execute({ sql: 'SELECT RELEASE_LOCK(?)', timeout: 5_000 }, [lockName])
        .catch((err: unknown) =>
          logger.warn({ err }, 'RELEASE_LOCK failed (released when the session closes)'),
        );
    }
    await closeQuietly(conn);
  }
}

/** GET_LOCK name for a database's migrations (hashed when the name would exceed 64 characters). */
export function migrationLockName(database: string): string {
  const name = `hyperscale_migrations:${database}`;
  return name.length <= 64
    ? name
    : `hyperscale_migrations:${createHash('sha256').update(database).digest('hex').slice(0, 40)}`;
}

async function closeQuietly(conn: Connection): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), 2_000);
  });
  try {
    const outcome = await Promise.race([conn.end().then(() => 'ok' as const), timedOut]);
    if (outcome === 'timeout') conn.destroy();
  } catch {
    conn.destroy();
  } finally {
    clearTimeout(timer);
  }
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
