"""CPU per row of `ColumnarBuilder.build` alone, over demo events read once from a SQLite store.

    .venv/bin/python bench/columnar_build.py [--events 200000] [--rounds 15] [--against FILE]

The store is seeded with the demo generator (all events allow-listed, so every row becomes a
Track message) and read as 20,000-row Arrow chunks once; then each round builds every chunk and
takes the process CPU (time.process_time: DuckDB's own threads included). Best and median of
the rounds, in µs per row. `--against` loads another copy of columnar_build.py (e.g. the one of
an older commit, via `git show`) and alternates the two builders round by round, so both meet
the same machine; the messages of both are compared, and a difference is reported.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/columnar_build.py` puts bench/ first
    sys.path.insert(0, str(ROOT))

import pyarrow as pa  # noqa: E402

from segment_sync.loyalty.demo import ACTIONS, seed  # noqa: E402
from segment_sync.loyalty.records import Stream  # noqa: E402
from segment_sync.loyalty.store import LoyaltyStore  # noqa: E402
from segment_sync.outbound import columnar_build  # noqa: E402
from segment_sync.settings import parse_settings  # noqa: E402

CHUNK = 20_000


def _chunks(url: str) -> list[pa.Table]:
    store = LoyaltyStore(url)
    chunks, after = [], 0
    while (chunk := store.arrow_after(Stream.EVENTS, after, 2**62, CHUNK)) is not None and len(
        chunk
    ):
        chunks.append(chunk)
        after = chunk["id"][-1].as_py()
    store.close()
    return chunks


def _module(path: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location("columnar_build_against", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _messages(built: list) -> list:
    """Every column of every chunk's messages, and what was not sent, for comparing builders."""
    out = []
    for b in built:
        m = b.messages
        cols = (m.message_id, m.source_id, m.customer_id, m.event_name, m.bodies, m.occurred_ms)
        out.append(([(c.type, c.to_pylist()) for c in cols], b.not_sent, b.not_allow_listed))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--against", help="another columnar_build.py to compare with")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'loyalty.db'}"
        store = LoyaltyStore(url)
        seed(store, args.events, 0)
        store.close()
        chunks = _chunks(url)
        settings = parse_settings(
            {
                "loyalty_store": {"url": url},
                "outbound": {
                    "base_url": "http://127.0.0.1:9",
                    "event_sync": list(ACTIONS),
                    "state_url": f"sqlite:///{Path(tmp) / 'state.db'}",
                },
                "logs": {"dir": str(Path(tmp) / "logs")},
            }
        )
        modules = {"this": columnar_build}
        if args.against:
            modules["against"] = _module(args.against)
        builders = {k: m.ColumnarBuilder(settings, Stream.EVENTS) for k, m in modules.items()}
        built = {k: [b.build(c) for c in chunks] for k, b in builders.items()}  # warm, and kept
        rows = sum(len(c) for c in chunks)
        times: dict[str, list[float]] = {k: [] for k in builders}
        for r in range(args.rounds):
            for k in list(builders)[:: 1 if r % 2 else -1]:
                started = time.process_time()
                for chunk in chunks:
                    builders[k].build(chunk)
                times[k].append((time.process_time() - started) / rows * 1e6)
        for k, t in times.items():
            print(
                f"{k:8s} best {min(t):.3f}  median {statistics.median(t):.3f} µs/row ({rows} rows)"
            )
        if args.against and _messages(built["this"]) != _messages(built["against"]):
            print("MISMATCH: the two builders' messages differ")
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
