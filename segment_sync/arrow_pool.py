"""Which allocator Arrow uses, chosen only by the processes that run the outbound sync.

Importing pyarrow fixes its default pool from ARROW_DEFAULT_MEMORY_POOL; afterwards only
`pyarrow.set_memory_pool` changes it (native_memory.py), and the outbound-perf measurements
found that later switch left ~60 MiB more resident than choosing before the import.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

POOL_ENV = "ARROW_DEFAULT_MEMORY_POOL"


def operator_pool() -> str | None:
    """The pool an operator chose in the environment, or None when nobody did."""
    return os.environ.get(POOL_ENV) or None


@contextmanager
def system_pool_for_import() -> Iterator[None]:
    """Around the first import of pyarrow: Arrow starts on the C allocator unless the operator
    chose a pool; the variable is removed again, so child processes never inherit our choice."""
    ours = "pyarrow" not in sys.modules and operator_pool() is None
    if ours:
        os.environ[POOL_ENV] = "system"
    try:
        yield
    finally:
        if ours and os.environ.get(POOL_ENV) == "system":
            del os.environ[POOL_ENV]
