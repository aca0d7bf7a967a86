"""Arrow's allocator is chosen by the processes that run the outbound sync, never at import."""

from __future__ import annotations

import os
import subprocess
import sys

# Prints Arrow's pool and the variable after the command ran (dry run: no sync, so the pool
# is the one Arrow started on, not one native_memory.py switched to later).
_CLI = """
import os, sys
from segment_sync.cli.main import main
try:
    main(["run", "outbound", "--dry-run", "--settings", sys.argv[1]])
except SystemExit as exit:
    assert not exit.code, exit.code
import pyarrow as pa
print(pa.default_memory_pool().backend_name, os.environ.get("ARROW_DEFAULT_MEMORY_POOL"))
"""
_IMPORT = """
import os, sys
{imports}
import pyarrow as pa
print(pa.default_memory_pool().backend_name, os.environ.get("ARROW_DEFAULT_MEMORY_POOL"))
"""


def _python(code: str, *args: str, pool: str | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    if pool is not None:
        env["ARROW_DEFAULT_MEMORY_POOL"] = pool
    done = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def _settings(write_settings) -> str:
    return str(write_settings(outbound={"base_url": "http://127.0.0.1:9"}))


def test_importing_the_package_and_its_definitions_leaves_arrow_and_the_environment_alone():
    arrow_alone = _python(_IMPORT.format(imports=""))
    assert arrow_alone.endswith(" None")
    imported = _python(_IMPORT.format(imports="import segment_sync.definitions"))
    assert imported == arrow_alone


def test_run_outbound_starts_arrow_on_the_system_pool_and_children_do_not_inherit_it(
    write_settings,
):
    assert _python(_CLI, _settings(write_settings)) == "system None"


def test_an_operators_own_pool_stands_for_run_outbound(write_settings):
    assert _python(_CLI, _settings(write_settings), pool="mimalloc") == "mimalloc mimalloc"


def test_a_sync_keeps_an_operators_own_pool():
    code = _IMPORT.format(imports="from segment_sync.native_memory import bound_native_memory")
    code = code.replace("import pyarrow as pa", "import pyarrow as pa; bound_native_memory()")
    assert _python(code, pool="mimalloc").startswith("mimalloc ")
    assert _python(code).startswith("system ")


_NO_PANDAS = """
import sys
from segment_sync.arrow_pool import system_pool_for_import
with system_pool_for_import():
    import pyarrow as pa
table = pa.table({"a": pa.array(["x", "y"])})
imported = "pandas" in sys.modules
frame = table.to_pandas()
print(imported, type(frame).__name__, list(frame["a"]))
"""
_RUN = """
import sys
from segment_sync.cli.main import main
try:
    main(["run", "outbound", "--stream", "events", "--settings", sys.argv[1]])
except SystemExit as exit:
    assert not exit.code, exit.code
print("pandas" in sys.modules)
"""


def test_arrow_started_for_a_sync_does_not_import_pandas_yet_converts_to_it_when_asked():
    assert _python(_NO_PANDAS) == "False DataFrame ['x', 'y']"


def test_a_run_outbound_that_sends_events_never_imports_pandas(write_settings, segment_standin):
    from segment_sync.loyalty.demo import seed
    from segment_sync.loyalty.store import LoyaltyStore
    from segment_sync.settings import load_settings

    path = write_settings(outbound={"base_url": segment_standin.url})
    store = LoyaltyStore(load_settings(path).loyalty_store.url)
    seed(store, 50, 0)
    store.close()
    assert _python(_RUN, str(path)) == "False"
    assert segment_standin.stats()["messages_accepted"] > 0
