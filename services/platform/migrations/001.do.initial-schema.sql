-- Hyperscale system of record (DESIGN.md section 4). Forward-only: there are no undo scripts.
--
-- Ids (post/user ids, counter and unique names, Kafka topics and group ids) are restricted to
-- [A-Za-z0-9_.:-], so they are stored as ASCII with binary collation:
--   * 1 byte per character: short primary keys and secondary indexes;
--   * exact, case-sensitive comparison, the same identity Redis and Kafka give them ("Post-1" and
--     "post-1" are two posts everywhere), and no collation-dependent trailing-space/accent folding;
--   * in strict SQL mode a non-ASCII id is rejected instead of being silently transcoded.
-- Tables default to utf8mb4 for any free text added later.
-- DATETIME columns hold UTC: every Hyperscale connection runs with time_zone = '+00:00'.
-- CREATE TABLE IF NOT EXISTS because MySQL DDL is not transactional: if this script stops
-- half-way, re-running it completes the schema instead of failing on the first table.

CREATE TABLE IF NOT EXISTS like_records (
  post_id    VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  user_id    VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  created_at DATETIME(6) NOT NULL,
  PRIMARY KEY (post_id, user_id),
  KEY idx_like_records_user_created (user_id, created_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS post_stats (
  post_id    VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  like_count BIGINT NOT NULL DEFAULT 0,
  updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
  PRIMARY KEY (post_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS counters (
  name       VARCHAR(200) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  value      BIGINT NOT NULL DEFAULT 0,
  updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
  PRIMARY KEY (name)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS unique_daily (
  name    VARCHAR(200) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  day     DATE NOT NULL,
  user_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  PRIMARY KEY (name, day, user_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- Kafka limits topic names to 249 characters of [a-zA-Z0-9._-]; group ids are ours (ASCII).
CREATE TABLE IF NOT EXISTS consumer_offsets (
  group_id    VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  topic       VARCHAR(249) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  `partition` INT NOT NULL,
  next_offset BIGINT NOT NULL,
  updated_at  DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
  PRIMARY KEY (group_id, topic, `partition`)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
