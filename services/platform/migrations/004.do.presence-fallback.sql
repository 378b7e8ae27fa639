-- Presence fallback (services/counter, DESIGN.md §2 "Presence" and "Fallback"): while a room's
-- Redis shard fails, heartbeats are kept here (one row per room and user, last_seen in UTC) and
-- online counts are computed from it. Rows older than the presence window are dead weight; a
-- heartbeat of the same user overwrites its row, a leave deletes it.
CREATE TABLE IF NOT EXISTS presence (
  room      VARCHAR(200) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  user_id   VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  last_seen DATETIME(3) NOT NULL,
  PRIMARY KEY (room, user_id),
  KEY idx_presence_room_seen (room, last_seen)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
