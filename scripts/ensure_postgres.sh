#!/usr/bin/env bash
# Make sure the PostgreSQL the tests use answers (SEGMENT_SYNC_TEST_PG_URL, default
# postgresql://postgres@127.0.0.1:5432/test). Starts a local Debian cluster if one is installed
# but stopped. SEGMENT_SYNC_TEST_PG_URL=skip runs the suite without the PostgreSQL tests.
set -euo pipefail
url="${SEGMENT_SYNC_TEST_PG_URL:-postgresql://postgres@127.0.0.1:5432/test}"
[ "$url" = "skip" ] && { echo "PostgreSQL tests skipped (SEGMENT_SYNC_TEST_PG_URL=skip)"; exit 0; }

ready() { pg_isready -q -d "$url" 2>/dev/null; }
if command -v pg_isready >/dev/null && ready; then exit 0; fi

if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  echo "starting PostgreSQL $version (cluster main)"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 30); do ready && exit 0; sleep 1; done
fi
echo "PostgreSQL is not reachable at $url." >&2
echo "Start one (e.g. docker run -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust postgres:16)," >&2
echo "point SEGMENT_SYNC_TEST_PG_URL at it, or set SEGMENT_SYNC_TEST_PG_URL=skip." >&2
exit 1
