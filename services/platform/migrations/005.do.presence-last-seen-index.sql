-- Retention of presence fallback rows (services/writer/src/retention.ts): the writer deletes rows
-- whose last_seen is older than PRESENCE_RETENTION_MS, oldest first, in batches. The primary key
-- (room, user_id) and idx_presence_room_seen (room, last_seen) cannot serve a cut across all
-- rooms, so without this index every batch would scan (and lock) the whole table.
-- fallback_events already has idx_fallback_events_created (migration 003).
-- Guarded by information_schema instead of ADD INDEX IF NOT EXISTS (MariaDB only), so a re-run
-- after a half-applied run completes on MariaDB and MySQL alike.
SET @hs_ddl = IF(
  (SELECT COUNT(*) FROM information_schema.STATISTICS
    WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'presence' AND INDEX_NAME = 'idx_presence_last_seen') = 0,
  'ALTER TABLE presence ADD INDEX idx_presence_last_seen (last_seen)',
  'DO 0'
);
PREPARE hs_stmt FROM @hs_ddl;
EXECUTE hs_stmt;
DEALLOCATE PREPARE hs_stmt;
