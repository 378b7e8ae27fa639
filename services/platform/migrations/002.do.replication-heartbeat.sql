-- Replication heartbeat for the replica lag monitor (src/mysql/replica-lag-monitor.ts).
-- The monitor upserts row id = 1 on the primary every interval with ts = UTC_TIMESTAMP(6); the
-- replica's copy of ts tells how far behind it is, measured against the primary's own clock.
CREATE TABLE IF NOT EXISTS replication_heartbeat (
  id TINYINT UNSIGNED NOT NULL,
  ts DATETIME(6) NOT NULL,
  PRIMARY KEY (id)
) ENGINE = InnoDB;
