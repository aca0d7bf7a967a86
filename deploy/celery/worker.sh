#!/usr/bin/env bash
# One Celery worker for segment-sync runs: `deploy/celery/worker.sh [NAME] [celery worker args]`.
# It needs the same environment as the runs: DAGSTER_HOME (this directory, or a copy of its
# dagster.yaml), DAGSTER_PG_URL, DAGSTER_CELERY_BROKER_URL, DAGSTER_CELERY_BACKEND_URL,
# SEGMENT_SYNC_SETTINGS and the secrets the settings name (SEGMENT_WRITE_KEY, ...).
# --concurrency 1: a worker sends one shard at a time; start more workers for more shards.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
name="${1:-segment-sync-$(hostname)-$$}"
shift || true
: "${DAGSTER_HOME:?set DAGSTER_HOME to the directory holding the instance dagster.yaml}"
: "${DAGSTER_CELERY_BROKER_URL:?set DAGSTER_CELERY_BROKER_URL (the broker the runs use)}"
: "${DAGSTER_CELERY_BACKEND_URL:?set DAGSTER_CELERY_BACKEND_URL (the result backend the runs use)}"
# Workers started together on a new database would race to create Dagster's tables: one at a
# time, under a PostgreSQL advisory lock, and the rest find them made.
segment-sync instance prepare
exec dagster-celery worker start --name "$name" --config-yaml "$here/celery.yaml" \
  --app dagster_celery.app -- --concurrency "${WORKER_CONCURRENCY:-1}" "$@"
