"""How Arrow starts in the processes that run the outbound sync: its allocator, and no pandas.

Importing pyarrow fixes its default pool from ARROW_DEFAULT_MEMORY_POOL; afterwards only
`pyarrow.set_memory_pool` changes it (native_memory.py), and the outbound-perf measurements
found that later switch left ~60 MiB more resident than choosing before the import.

pyarrow also imports pandas, when it is installed, the first time it converts a Python
object (`pa.array([...])` asks whether the object is a pandas one): ~30-45 MiB resident
that a sync never uses (pandas is for the notebooks' logbook).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.abc import MetaPathFinder

POOL_ENV = "ARROW_DEFAULT_MEMORY_POOL"


def operator_pool() -> str | None:
    """The pool an operator chose in the environment, or None when nobody did."""
    return os.environ.get(POOL_ENV) or None


@contextmanager
def system_pool_for_import() -> Iterator[None]:
    """Around the first import of pyarrow: Arrow starts on the C allocator unless the operator
    chose a pool; the variable is removed again, so child processes never inherit our choice.
    Then pyarrow is told there is no pandas (see `arrow_without_pandas`)."""
    ours = "pyarrow" not in sys.modules and operator_pool() is None
    first = "pyarrow" not in sys.modules
    if ours:
        os.environ[POOL_ENV] = "system"
    try:
        yield
    finally:
        if ours and os.environ.get(POOL_ENV) == "system":
            del os.environ[POOL_ENV]
    if first and "pyarrow" in sys.modules:
        arrow_without_pandas()


class _NoPandas(MetaPathFinder):
    """Refuses to import pandas (only while pyarrow first looks for it)."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name == "pandas" or name.startswith("pandas."):
            raise ImportError("not imported by a sync (segment_sync/arrow_pool.py)")


def arrow_without_pandas() -> None:
    """pyarrow looks for pandas once and remembers the answer: let it find none.

    Arrow's own conversions never need it. An explicit pandas conversion still works
    (`Table.to_pandas()` imports pandas again when pyarrow has none); only pyarrow's guess
    whether an object is a pandas one answers no until then. Nothing changes where pandas was
    imported already.
    """
    if "pandas" in sys.modules:
        return
    import pyarrow as pa

    blocker = _NoPandas()
    sys.meta_path.insert(0, blocker)
    try:
        pa.array([])  # pyarrow's first look for pandas (cached for the process)
    finally:
        sys.meta_path.remove(blocker)
