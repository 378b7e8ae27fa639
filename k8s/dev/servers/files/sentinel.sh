#!/bin/sh
# One Sentinel: pod <statefulset>-<n>, DNS name <pod>.<SENTINEL_HEADLESS>. Its config file is written
# at each start into a writable volume (a Sentinel rewrites it as it learns). A group's master is
# taken from the Sentinels already running (after a failover it is no longer pod 0), else pod 0 of
# redis-<group>. Env: SHARD_GROUPS, SENTINEL_SERVICE, SENTINEL_HEADLESS, QUORUM, DOWN_AFTER_MS,
# FAILOVER_TIMEOUT_MS, and SENTINEL_CONF (default /data/sentinel.conf).
set -eu
conf="${SENTINEL_CONF:-/data/sentinel.conf}"
cat > "${conf}" <<CONF
port 26379
dir $(dirname "${conf}")
sentinel resolve-hostnames yes
sentinel announce-hostnames yes
sentinel announce-ip ${HOSTNAME}.${SENTINEL_HEADLESS}
CONF
for group in ${SHARD_GROUPS}; do
  master="$(timeout 3 redis-cli -h "${SENTINEL_SERVICE}" -p 26379 --raw \
    sentinel get-master-addr-by-name "${group}" 2>/dev/null | head -n 1 || true)"
  [ -n "${master}" ] || master="redis-${group}-0.redis-${group}"
  # A Sentinel refuses a master name it cannot resolve; pods get their DNS records as they start.
  until getent hosts "${master}" >/dev/null; do
    echo "waiting for ${master} to resolve"
    sleep 2
  done
  cat >> "${conf}" <<CONF
sentinel monitor ${group} ${master} 6379 ${QUORUM}
sentinel down-after-milliseconds ${group} ${DOWN_AFTER_MS}
sentinel failover-timeout ${group} ${FAILOVER_TIMEOUT_MS}
sentinel parallel-syncs ${group} 1
CONF
done
exec redis-sentinel "${conf}"
