#!/usr/bin/env bash
# Make sure the Redis the tests use answers (SEGMENT_SYNC_TEST_REDIS_URL, default
# redis://127.0.0.1:6379): the Celery executor and shared rate limiter tests need it. Starts a
# local redis-server if one is installed but not running. Without Redis those tests skip (and fail
# under SEGMENT_SYNC_CI=1, as .ci/run sets).
set -euo pipefail
url="${SEGMENT_SYNC_TEST_REDIS_URL:-redis://127.0.0.1:6379}"
hostport="${url#redis://}"; hostport="${hostport%%/*}"
host="${hostport%%:*}"; port="${hostport##*:}"
[ "$port" = "$host" ] && port=6379

ready() { redis-cli -h "$host" -p "$port" ping 2>/dev/null | grep -q PONG; }
if command -v redis-cli >/dev/null && ready; then exit 0; fi

if command -v redis-server >/dev/null && [ "$host" = "127.0.0.1" ]; then
  echo "starting redis-server on 127.0.0.1:$port"
  redis-server --port "$port" --bind 127.0.0.1 --daemonize yes --save "" --appendonly no
  for _ in $(seq 1 30); do ready && exit 0; sleep 0.5; done
fi
echo "Redis is not reachable at $url (needed by the Celery and shared-limiter tests)." >&2
echo "Start one (e.g. docker run -p 6379:6379 redis:7) or point SEGMENT_SYNC_TEST_REDIS_URL at it." >&2
[ -n "${SEGMENT_SYNC_CI:-}" ] && exit 1
exit 0
