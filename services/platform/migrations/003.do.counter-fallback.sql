-- Counter fallback records (services/counter, DESIGN.md §2 "Fallback").
-- When Kafka does not acknowledge a delta, the counter service undoes its Redis increment and
-- applies the delta to `counters` on the primary itself. A send that timed out may still land in
-- Kafka later; the fallback therefore records the delta's eventId here IN THE SAME TRANSACTION as
-- the upsert, and the writer's counter handler skips every event whose id is recorded: each
-- acknowledged delta is applied exactly once, by whichever path got it.
-- Rows are small; a retention job may delete rows older than the topic's retention.
CREATE TABLE IF NOT EXISTS fallback_events (
  event_id   VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (event_id),
  KEY idx_fallback_events_created (created_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
