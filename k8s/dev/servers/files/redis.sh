#!/bin/sh
# One Redis of a shard group: pod <group>-<n> of StatefulSet <group>, DNS name <group>-<n>.<group>.
# It asks the Sentinels for the group's master, so that a pod restarted after a failover rejoins
# as a replica of the new master. When no Sentinel answers (the first start), pod 0 is the master
# and the others replicate it. Env: MASTER_NAME, SENTINEL_HOST, SENTINEL_PORT.
set -eu
group="${HOSTNAME%-*}"
self="${HOSTNAME}.${group}"
master="$(timeout 3 redis-cli -h "${SENTINEL_HOST}" -p "${SENTINEL_PORT}" --raw \
  sentinel get-master-addr-by-name "${MASTER_NAME}" 2>/dev/null | head -n 1 || true)"
[ -n "${master}" ] || master="${group}-0.${group}"
# Replicas announce their DNS name, so the Sentinels (announce-hostnames) hand out names that
# survive a pod's new IP.
set -- --port 6379 --dir /data --appendonly yes --protected-mode no --replica-announce-ip "${self}"
if [ "${master}" != "${self}" ]; then
  echo "starting as a replica of ${master}"
  set -- "$@" --replicaof "${master}" 6379
else
  echo "starting as the master of ${MASTER_NAME}"
fi
exec redis-server "$@"
