/**
 * `node dist/mysql/migrate-cli.js` — migrates the database of `MYSQL_PRIMARY_URL` to the latest
 * version (or `MYSQL_MIGRATION_TARGET`), from `MYSQL_MIGRATIONS_DIR` if set. Prints JSON log
 * lines (pino) to stdout and exits 0 on success, 1 on any failure, so it fits a Kubernetes Job or
 * Helm hook. Safe to run while services start (they may migrate too: the run is locked).
 */
import { pino } from 'pino';
import { migrate } from './migrate.js';

const logger = pino({ name: 'hyperscale-migrate' });

async function main(): Promise<number> {
  const url = process.env['MYSQL_PRIMARY_URL'];
  if (url === undefined || url === '') {
    logger.error('MYSQL_PRIMARY_URL is not set (mysql://user:password@host:port/database)');
    return 1;
  }
  const targetRaw = process.env['MYSQL_MIGRATION_TARGET'];
  const targetVersion = targetRaw === undefined || targetRaw === '' ? undefined : Number(targetRaw);
  if (targetVersion !== undefined && !Number.isInteger(targetVersion)) {
    logger.error({ targetRaw }, 'MYSQL_MIGRATION_TARGET must be an integer');
    return 1;
  }
  const dir = process.env['MYSQL_MIGRATIONS_DIR'];
  try {
    const result = await migrate({
      url,
      logger,
      ...(targetVersion !== undefined ? { targetVersion } : {}),
      ...(dir !== undefined && dir !== '' ? { migrationsDir: dir } : {}),
    });
    logger.info({ result }, 'migrate done');
    return 0;
  } catch (err) {
    logger.error({ err }, 'migrate failed');
    return 1;
  }
}

process.exitCode = await main();
