"""A run of the code location's outbound job in this process, its steps on Celery workers.

`python -m segment_sync_tests.defs.celery_runs shard-K` runs shard K's partition;
`... --from-failure RUN_ID` re-executes a failed run from its failed step (as run retries do).
The instance is DAGSTER_HOME's, the settings SEGMENT_SYNC_SETTINGS's, as for `dagster dev`.
"""

from __future__ import annotations

import sys

import dagster as dg
from dagster._core.definitions.reconstruct import ReconstructableRepository

JOB = "outbound_sync_job"
PARTITION = "dagster/partition"


def outbound_job() -> dg.ReconstructableJob:
    """The job as a worker rebuilds it: by the code location's module and its `defs`."""
    repository = ReconstructableRepository.for_module("segment_sync.definitions", "defs")
    return repository.get_reconstructable_job(JOB)


def main(argv: list[str]) -> int:
    with dg.DagsterInstance.get() as instance:
        if argv[0] == "--from-failure":
            options = dg.ReexecutionOptions.from_failure(argv[1], instance)
            parent = instance.get_run_by_id(argv[1])
            tags = {PARTITION: parent.tags[PARTITION]}  # the run retry daemon keeps it too
            result = dg.execute_job(
                outbound_job(), instance, tags=tags, reexecution_options=options
            )
        else:
            tags = {PARTITION: argv[0]}
            result = dg.execute_job(outbound_job(), instance, tags=tags)
        print(f"run {result.run_id} {'SUCCESS' if result.success else 'FAILURE'}", flush=True)
        return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
