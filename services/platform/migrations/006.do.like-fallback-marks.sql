-- Like fallback marks (services/like fallbacks, services/writer likes handler).
-- A like or unlike written to MySQL by a fallback (Kafka failed, or Redis failed and the writer
-- had not caught up) supersedes every earlier event of the same (post, user) that Kafka holds and
-- the writer has not applied yet: applied late, such an event would undo the newer request. The
-- fallback records, in the same transaction as its write, the partition and the offset up to
-- which the pair's events are superseded; the writer skips the pair's events at or below it.
-- Offsets only compare within one partition: after the topic gains partitions a mark on another
-- partition skips nothing. Rows go after FALLBACK_EVENTS_RETENTION_MS (writer retention loop).
CREATE TABLE IF NOT EXISTS like_fallback_marks (
  post_id         VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  user_id         VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  kafka_partition INT NOT NULL,
  through_offset  BIGINT NOT NULL,
  created_at      DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (post_id, user_id),
  KEY idx_like_fallback_marks_created (created_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
