"""Logs on S3: requests per operation (what S3 bills, and the round trips a reader waits for).

    .venv/bin/python bench/s3_requests.py

Counts the requests moto's S3 server (in this process, on a free port) receives for: one flush,
opening the views and one count over 10 files, a maintenance pass, the same count after it.
Targets (docs/deploying/object-storage.md quotes them): a flush is 1 request; opening the views and one
count over 10 files at most 40; a maintenance pass of one 10-file partition at most 200. Exits 1
on a MISS. Request counts do not depend on the machine's load, which is printed anyway.
"""

from __future__ import annotations

import collections
import os
import sys
import threading
from datetime import UTC, datetime

os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_REGION="us-east-1")

from moto.moto_server.werkzeug_app import (  # noqa: E402
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server  # noqa: E402

from segment_sync.logs.maintenance import maintain_logs  # noqa: E402
from segment_sync.logs.object_store import s3_logs  # noqa: E402
from segment_sync.logs.store import LogWriter  # noqa: E402
from segment_sync.logs.views import connect  # noqa: E402

COUNTS: collections.Counter[str] = collections.Counter()
TARGETS = {"flush": 1, "views + count, 10 files": 40, "maintenance pass": 200}


class Counting(MotoRequestHandler):
    def log_request(self, *args: object, **kwargs: object) -> None:
        query = self.path.partition("?")[2]
        COUNTS[self.command + (" LIST" if "list-type" in query else "")] += 1


def rows(batch: str) -> list[dict]:
    now = datetime.now(UTC)
    return [
        {"timestamp": now, "message_id": f"{batch}-{i}", "outcome": "delivered"} for i in range(100)
    ]


def count_rows(url: str) -> None:
    with connect(url) as con:
        con.execute("SELECT count(*) FROM outbound_messages").fetchall()


def main() -> int:
    app = DomainDispatcherApplication(create_backend_app)
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=Counting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"s3://bench-logs/p?endpoint=http://127.0.0.1:{server.server_address[1]}"
    s3_logs(url).client.create_bucket(Bucket="bench-logs")
    writer = LogWriter(url)
    steps = {
        "flush": lambda: writer.write("outbound_messages", rows("first")),
        "views + count, 10 files": lambda: count_rows(url),
        "maintenance pass": lambda: maintain_logs(url, retention_days=90, min_files=2),
        "views + count, after": lambda: count_rows(url),
    }
    for batch in range(9):  # with the flush step's file: 10 files in one partition
        writer.write("outbound_messages", rows(str(batch)))
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    missed = False
    for name, step in steps.items():
        COUNTS.clear()
        step()
        total = sum(COUNTS.values())
        target = TARGETS.get(name)
        verdict = "" if target is None else ("ok" if total <= target else "MISS")
        missed |= verdict == "MISS"
        limit = f"(target <= {target})" if target else ""
        print(f"{name:26} {total:4} requests {dict(sorted(COUNTS.items()))} {limit} {verdict}")
    server.shutdown()
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
