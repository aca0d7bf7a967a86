"""CPU per row of LoyaltyStore.arrow_after on SQLite: the outbound job's read of the store.

```
.venv/bin/python bench/arrow_read.py [--events 100000] [--rounds 7] [--root <tree>] [--non-ascii]
```

A store of `--events` demo events is seeded in this process (as the job's own heap would be
full), then read in chunks of 20,000 rows as the job reads it: once under fewer_gc_pauses (how
the outbound sync runs) and once with the interpreter's default collector. Process CPU
(process_time) per row, the best of `--rounds` reads. `--root` reads with another source tree
(say `git archive main | tar -x -C /tmp/main`) for a before/after on the same machine load;
`--non-ascii` adds accents, CJK and an emoji to every customer ID and event's data.
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

NON_ASCII = """UPDATE loyalty_events SET customer_id = customer_id || '-Zoë',
    data = substr(data, 1, length(data) - 1) || ', "store": "Café Zürich 東京 😀"}'"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--root", type=Path, default=HERE.parent)
    parser.add_argument("--non-ascii", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(args.root.resolve()))
    from segment_sync.gc_pauses import fewer_gc_pauses
    from segment_sync.loyalty import arrow_reader
    from segment_sync.loyalty.demo import seed
    from segment_sync.loyalty.records import Stream
    from segment_sync.loyalty.store import LoyaltyStore

    folder = Path(tempfile.mkdtemp(prefix="arrow-read-"))
    store = LoyaltyStore(f"sqlite:///{folder / 'loyalty.db'}")
    seed(store, args.events, 0)
    if args.non_ascii:
        with store.engine.begin() as conn:
            conn.exec_driver_sql(NON_ASCII)
    top = store.newest_id(Stream.EVENTS)

    def per_row() -> float:
        after, rows, cpu = 0, 0, 0.0
        while after < top:
            started = time.process_time()
            chunk = store.arrow_after(Stream.EVENTS, after, top, 20_000)
            cpu += time.process_time() - started
            assert chunk is not None and len(chunk), "a demo row did not read as Arrow"
            rows, after = rows + len(chunk), chunk["id"][-1].as_py()
            del chunk
            gc.collect()  # as the sync does between chunks (not timed)
        assert rows == top
        return cpu / rows * 1e6

    with fewer_gc_pauses():
        tuned = min(per_row() for _ in range(args.rounds))
    default = min(per_row() for _ in range(args.rounds))
    store.close()
    print(f"reader {Path(arrow_reader.__file__).parent.parent.parent}")
    print(f"arrow_after, {top:,} events: {tuned:.3f} us/row as the sync runs (fewer_gc_pauses),")
    print(f"  {default:.3f} us/row with the default collector (best of {args.rounds})")


if __name__ == "__main__":
    main()
