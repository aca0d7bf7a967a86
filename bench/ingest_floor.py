"""The ingest floor: the same job as `InboundIngest.run`, done plainly by a serial script.

Run by bench/ingest.py as a child (`python bench/ingest_floor.py _child floor cfg.json`). It reads
the pending rows of the SQLite buffer in chunks of 1,000, parses each payload with orjson, builds
the Antavo event the "Loyalty events" mapping builds ({customer: userId, action: point_add, data:
{points}}), POSTs 50 a request to /events/bulk (Escher-signed, as Antavo requires) over one
keep-alive httpx connection, one request at a time, and marks each request's items done in one
UPDATE ... WHERE id IN. No logs, no leases, no retries, no per-event answers kept.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import time
from pathlib import Path

import httpx
import orjson

from segment_sync.antavo import escher

CHUNK = 1000
BULK = 50


def run(cfg: dict) -> dict:
    key, secret = os.environ["ANTAVO_API_KEY"], os.environ["ANTAVO_API_SECRET"]
    url = cfg["antavo_url"].rstrip("/") + "/events/bulk"
    db = sqlite3.connect(cfg["db"], isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    done = 0
    started, cpu = time.perf_counter(), time.process_time()
    with httpx.Client(timeout=30) as http:
        after = 0
        while rows := db.execute(
            "SELECT id, payload FROM inbound_buffer WHERE status = 'pending' AND id > ? "
            "ORDER BY id LIMIT ?",
            (after, CHUNK),
        ).fetchall():
            after = rows[-1][0]
            for start in range(0, len(rows), BULK):
                part = rows[start : start + BULK]
                events = []
                for _, payload in part:
                    e = orjson.loads(payload)
                    events.append(
                        {
                            "customer": e["userId"],
                            "action": "point_add",
                            "data": {"points": e["properties"]["points"]},
                        }
                    )
                body = orjson.dumps({"events": events})
                headers = escher.sign_request(key, secret, cfg["stack"], "POST", url, body)
                headers["Content-Type"] = "application/json"
                response = http.post(url, content=body, headers=headers)
                response.raise_for_status()
                ids = [i for i, _ in part]
                db.execute(
                    f"UPDATE inbound_buffer SET status = 'done', attempts = attempts + 1 "
                    f"WHERE id IN ({','.join('?' * len(ids))})",
                    ids,
                )
                done += len(ids)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    db.close()
    return {"elapsed_s": elapsed, "run_cpu_s": cpu, "done": done}


def main(argv: list[str]) -> int:
    if argv[:2] != ["_child", "floor"]:
        print(__doc__)
        return 2
    cfg = json.loads(Path(argv[2]).read_text())
    Path(cfg["result_path"]).write_text(json.dumps(run(cfg)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
