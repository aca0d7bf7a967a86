"""Receiver edge benchmark: RSS under slow connections and large unauthenticated bodies.

    .venv/bin/python bench/receiver_edge.py [--slow 200] [--big 60] [--big-mib 5] [--no-before]

Each variant is the receiver in its own process (`run_receiver`, durable SQLite buffer in a
temporary directory, shared secret set), loaded by this process over loopback with:

1. `--slow` connections that send part of their request headers, then one more header byte a
   second (a slowloris client), held for the whole run;
2. then `--big` connections at once, each sending a `--big-mib` MiB JSON body with a wrong
   X-Signature (and no bearer token);
3. while both are under way, one normal signed request (a single event; with the token where the
   variant has one), whose status and latency are reported.

Variants: `before` is the receiver of commit db50045 (extracted with `git archive` into the
temporary directory; skipped with --no-before or when git cannot find it), `after` is this tree
with a shared secret only, `after+token` adds `inbound.webhook_token_env`. For each: RSS at rest,
peak RSS (VmRSS sampled every 20 ms from /proc), the answers to the big bodies, how many slow
connections the server had closed by the end ("closed": a big body refused early, the connection
closed while it was still being sent). Figures go to bench/results/receiver_edge.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from segment_sync.inbound.signature import sign  # noqa: E402
from segment_sync.standins.server import free_port  # noqa: E402

BEFORE_COMMIT = "db50045"
SECRET = "bench-webhook-secret"
TOKEN = "bench-bearer-token"
HOLD_S = 20.0

_SERVE = """
import sys
from segment_sync.inbound.receiver import run_receiver
url, port, secret, token = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
kwargs = dict(webhook_token=token) if token else dict()
run_receiver(url, secret, "127.0.0.1", port, False, 5 * 1024 * 1024, **kwargs)
"""


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _start(pythonpath: Path, workdir: Path, tag: str, token: str | None) -> tuple[Any, int]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    log = open(workdir / f"{tag}.log", "wb")  # noqa: SIM115 - closed with the process
    cmd = [sys.executable, "-c", _SERVE, f"sqlite:///{workdir / tag}.db", str(port), SECRET]
    cmd.append(token or "")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=log, cwd=workdir)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{tag}: receiver exited; see {workdir / tag}.log")
        try:
            import httpx

            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc, port
        except Exception:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{tag}: receiver did not start")


async def _slow(port: int, stop: asyncio.Event, closed: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /segment HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    try:
        while not stop.is_set():
            writer.write(b"a")
            await writer.drain()
            try:
                if await asyncio.wait_for(reader.read(4096), timeout=1.0) == b"":
                    closed.append(1)
                    return
            except TimeoutError:
                continue
    except (ConnectionError, OSError):
        closed.append(1)
    finally:
        writer.close()


async def _big(port: int, size: int) -> int:
    body = b'{"type":"track","messageId":"big","properties":{"pad":"' + b"x" * size + b'"}}'
    head = (
        "POST /segment HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"X-Signature: {'0' * 40}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head)
        for start in range(0, len(body), 256 * 1024):
            writer.write(body[start : start + 256 * 1024])
            await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), timeout=60)
    except (ConnectionError, OSError, TimeoutError):
        return 0  # closed before answering
    finally:
        writer.close()
    return int(status_line.split()[1]) if status_line else 0


async def _signed(port: int, token: str | None) -> tuple[int, float]:
    import httpx

    body = b'{"type":"track","messageId":"normal-1","userId":"u1","event":"Order Completed"}'
    headers = {"X-Signature": sign(body, SECRET), "Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=60) as client:
        response = await client.post(
            f"http://127.0.0.1:{port}/segment", content=body, headers=headers
        )
    return response.status_code, time.perf_counter() - started


async def _load(pid: int, port: int, args, token: str | None) -> dict[str, Any]:
    peak = _rss_mib(pid)
    rest = peak
    stop = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, _rss_mib(pid))
            await asyncio.sleep(0.02)

    closed: list[int] = []
    sampler = asyncio.create_task(sample())
    slow = [asyncio.create_task(_slow(port, stop, closed)) for _ in range(args.slow)]
    await asyncio.sleep(1)
    size = args.big_mib * 1024 * 1024 - 200
    big = [asyncio.create_task(_big(port, size)) for _ in range(args.big)]
    await asyncio.sleep(0.5)
    signed_status, signed_s = await _signed(port, token)
    answers = Counter(await asyncio.gather(*big))
    remaining = HOLD_S - 1.5
    await asyncio.sleep(max(0.0, remaining))
    stop.set()
    await asyncio.gather(*slow, return_exceptions=True)
    await sampler
    return {
        "rss_at_rest_mib": round(rest, 1),
        "rss_peak_mib": round(peak, 1),
        # 0: the server answered early and closed while the body was still being sent
        "big_body_answers": {str(k or "closed"): v for k, v in sorted(answers.items())},
        "slow_closed_by_server": len(closed),
        "signed_request_status": signed_status,
        "signed_request_s": round(signed_s, 3),
    }


def _extract_before(workdir: Path) -> Path | None:
    target = workdir / "before"
    target.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", BEFORE_COMMIT, "segment_sync"],
        capture_output=True,
        check=False,
    )
    if archive.returncode != 0:
        return None
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slow", type=int, default=200)
    parser.add_argument("--big", type=int, default=60)
    parser.add_argument("--big-mib", type=int, default=5)
    parser.add_argument("--no-before", action="store_true")
    parser.add_argument(
        "--output", type=Path, default=ROOT / "bench" / "results" / "receiver_edge.json"
    )
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="receiver-edge-"))
    variants: list[tuple[str, Path | None, str | None]] = []
    if not args.no_before:
        before = _extract_before(workdir)
        if before is None:
            print(f"skipping 'before': git cannot find {BEFORE_COMMIT}")
        else:
            variants.append(("before", before, None))
    variants += [("after", ROOT, None), ("after+token", ROOT, TOKEN)]
    results: dict[str, Any] = {}
    try:
        for tag, path, token in variants:
            proc, port = _start(path, workdir, tag, token)
            try:
                results[tag] = asyncio.run(_load(proc.pid, port, args, token))
            finally:
                proc.terminate()
                proc.wait(timeout=30)
            print(tag, json.dumps(results[tag]), flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(
        f"\n{'variant':<12} {'RSS rest':>9} {'RSS peak':>9}  big-body answers      slow closed  signed"
    )
    for tag, r in results.items():
        print(
            f"{tag:<12} {r['rss_at_rest_mib']:>8.1f}M {r['rss_peak_mib']:>8.1f}M  "
            f"{json.dumps(r['big_body_answers']):<20} {r['slow_closed_by_server']:>4}/{args.slow}"
            f"     {r['signed_request_status']} in {r['signed_request_s']:.2f} s"
        )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps(
            {"config": vars(args) | {"output": str(args.output)}, "results": results}, indent=2
        )
    )


if __name__ == "__main__":
    main()
