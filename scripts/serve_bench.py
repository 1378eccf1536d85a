"""Load test of `nmt serve`: C concurrent clients for T seconds, with dynamic batching on and off.

    python scripts/serve_bench.py runs/toy --clients 64 --seconds 60

For each mode it starts `nmt serve RUN` on a free loopback port, waits for /health, lets C clients
(aiohttp, one connection each) post one sentence per request, drawn in a fixed order from the
test set, for T seconds, then stops the server with SIGTERM and checks that it exits 0. It reports
requests/s, sentences/s, the p50/p95/p99 latency and the errors (a status other than 200, or a
failed connection), and the ratio of the sentences/s. Traffic goes to 127.0.0.1 only, and is
bounded by --seconds and --max-requests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

try:
    import httpx
except ImportError:
    sys.exit("serve_bench.py needs httpx: pip install httpx (or: pip install -e '.[serve,test]')")


def start_server(run: str, extra: list[str], timeout: float = 120.0,
                 command: Sequence[str] = ("-m", "nmt", "serve")) -> tuple[subprocess.Popen, str]:
    """`nmt serve RUN --port 0 EXTRA` (or another `command` of python's that serves RUN with the same
    flags), and its URL once /health answers."""
    proc = subprocess.Popen([sys.executable, *command, run, "--host", "127.0.0.1", "--port", "0", *extra],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "runtime")])})
    deadline = time.monotonic() + timeout
    url = None
    assert proc.stdout is not None
    while url is None:
        line = proc.stdout.readline()
        if not line:
            raise SystemExit(f"nmt serve {run} ended before serving: {proc.stderr.read().strip()}")  # type: ignore[union-attr]
        m = re.search(r"serving on (http://\S+?)/ ", line)
        url = m.group(1) if m else None
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"nmt serve {run}: /health did not answer within {timeout:.0f} s")


def stop_server(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        return -9


async def load(url: str, sentences: list[str], clients: int, seconds: float, max_requests: int) -> dict:
    """C clients, each posting one sentence at a time until the time or the request budget is spent.
    aiohttp, not httpx: at a few hundred requests/s httpx takes a whole core of this 2-core machine,
    and the load generator, not the server, would be measured."""
    try:
        import aiohttp
    except ImportError:
        raise SystemExit("serve_bench.py needs aiohttp for its clients: pip install aiohttp") from None
    latencies: list[float] = []
    errors: dict[str, int] = {}
    sent = 0
    deadline = time.monotonic() + seconds

    async def client(c: int, http: aiohttp.ClientSession) -> None:
        nonlocal sent
        i = c
        while time.monotonic() < deadline and sent < max_requests:
            sent += 1
            text = sentences[i % len(sentences)]
            i += clients
            t0 = time.perf_counter()
            try:
                async with http.post(f"{url}/v1/translate", json={"text": [text]}) as r:
                    body = await r.json()
                    ok = r.status == 200 and len(body["translations"]) == 1
                    key = None if ok else f"HTTP {r.status}"
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError, KeyError) as e:
                key = type(e).__name__
            if key is None:
                latencies.append(time.perf_counter() - t0)
            else:
                errors[key] = errors.get(key, 0) + 1

    connector = aiohttp.TCPConnector(limit=clients)
    t0 = time.perf_counter()
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as http:
        await asyncio.gather(*(client(c, http) for c in range(clients)))
    elapsed = time.perf_counter() - t0
    latencies.sort()

    def pct(p: float) -> float:
        return round(1000 * latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))], 1) if latencies else 0.0

    return {"requests": len(latencies), "errors": sum(errors.values()), "error_kinds": errors,
            "seconds": round(elapsed, 2), "requests_per_s": round(len(latencies) / elapsed, 1),
            "sentences_per_s": round(len(latencies) / elapsed, 1),
            "p50_ms": pct(50), "p95_ms": pct(95), "p99_ms": pct(99)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", nargs="?", default="runs/toy", help="a trained run directory (default runs/toy: make demo)")
    ap.add_argument("--clients", type=int, default=64, help="concurrent clients (default 64)")
    ap.add_argument("--seconds", type=float, default=60.0, help="seconds of load per mode (default 60)")
    ap.add_argument("--max-requests", type=int, default=200_000, help="stop a mode after this many requests")
    ap.add_argument("--sentences", default="data/toy/test.en", help="one sentence a line (default data/toy/test.en)")
    ap.add_argument("--modes", default="batching,no-batching", help="comma-separated: batching, no-batching")
    ap.add_argument("--serve-args", default="", help="more flags for nmt serve, e.g. '--beam 5 --max-wait-ms 2'")
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args()
    if args.clients < 1 or args.seconds <= 0 or args.max_requests < 1:
        ap.error("--clients, --seconds and --max-requests must be positive")
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not modes or set(modes) - {"batching", "no-batching"}:
        ap.error(f"--modes: batching and/or no-batching, got {args.modes!r}")
    path = ROOT / args.sentences if not Path(args.sentences).is_absolute() else Path(args.sentences)
    try:
        sentences = [s for s in path.read_text(encoding="utf-8").splitlines() if s.strip()]
    except OSError as e:
        ap.error(f"--sentences {args.sentences}: {e.strerror}")
    if not sentences:
        ap.error(f"--sentences {args.sentences}: no sentences")

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    results: dict = {"run": args.run, "clients": args.clients, "seconds": args.seconds, "commit": commit,
                     "serve_args": args.serve_args, "cpu_count": os.cpu_count(), "modes": {}}
    for mode in modes:
        extra = args.serve_args.split() + (["--no-batching"] if mode == "no-batching" else [])
        proc, url = start_server(args.run, extra)
        try:
            out = asyncio.run(load(url, sentences, args.clients, args.seconds, args.max_requests))
            served = httpx.get(f"{url}/v1/info", timeout=10).json()["served"]
        finally:
            code = stop_server(proc)
        out["server_batches"] = served["batches"]
        out["sentences_per_batch"] = round(served["sentences"] / max(1, served["batches"]), 1)
        out["server_exit_code"] = code
        results["modes"][mode] = out
        print(f"{mode:12s} {out['requests']:7,} requests in {out['seconds']:.1f} s: {out['requests_per_s']:7.1f} req/s, "
              f"{out['sentences_per_s']:7.1f} sentences/s; latency p50 {out['p50_ms']} ms, p95 {out['p95_ms']} ms, "
              f"p99 {out['p99_ms']} ms; errors {out['errors']} {out['error_kinds'] or ''}; "
              f"{out['sentences_per_batch']} sentences per decode; server exit {code}", flush=True)
    if {"batching", "no-batching"} <= set(results["modes"]):
        on, off = results["modes"]["batching"], results["modes"]["no-batching"]
        results["speedup"] = round(on["sentences_per_s"] / max(off["sentences_per_s"], 1e-9), 2)
        print(f"dynamic batching: {results['speedup']}x the sentences/s of one request at a time "
              f"({args.clients} clients, {args.seconds:g} s each, commit {commit})")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    bad = any(m["errors"] or m["server_exit_code"] != 0 for m in results["modes"].values())
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
