#!/usr/bin/env bash
# Creates .stack/dev.env once: the local development secrets every service reads (a random HS256
# JWT secret and an admin token). Never committed; `make token` signs tokens with the same secret.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .stack
file=.stack/dev.env
if [[ ! -s $file ]]; then
  umask 077
  {
    echo "JWT_HS256_SECRET=$(head -c 36 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
    echo "ADMIN_TOKEN=$(head -c 24 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
  } >"$file"
fi
echo "$file"
