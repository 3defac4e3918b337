"""Many fuzzed editing sessions against one language server over stdio (the generator and the checks are
tests/session_fuzz.py's): counts requests, JSON-RPC errors, hangs, crashes, document desyncs and invalid ranges.

    .venv/bin/python -m bench.fuzz_sessions [--sessions 2000] [--max-ops 25] [--seed 0] [--timeout 60]

Prints a table and writes `bench/results/fuzz_sessions.json` (with the first failures, for reproducing them).
The server's stderr goes to `bench/results/fuzz_sessions.stderr.log`; its tracebacks are counted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, seed, settings

from bench.common import RESULTS as RESULTS_DIR
from tests.session_fuzz import FuzzClient, Session, sessions

RESULTS = RESULTS_DIR / "fuzz_sessions.json"
STDERR_LOG = RESULTS_DIR / "fuzz_sessions.stderr.log"


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    STDERR_LOG.parent.mkdir(parents=True, exist_ok=True)
    STDERR_LOG.write_text("")
    with tempfile.TemporaryDirectory(prefix="lift-fuzz-") as workdir:
        client = FuzzClient(Path(workdir), request_timeout_s=args.timeout, stderr_log=STDERR_LOG)
        await client.start()
        loop = asyncio.get_running_loop()
        progress_every = max(1, args.sessions // 20)
        started = time.monotonic()

        @settings(
            max_examples=args.sessions,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @seed(args.seed)
        @given(session=sessions(max_ops=args.max_ops))
        def one(session: Session) -> None:
            if not client.alive():
                return
            asyncio.run_coroutine_threadsafe(client.run(session), loop).result()
            done = client.stats.sessions
            if done % progress_every == 0:
                print(
                    f"  {done} sessions, {client.stats.requests} requests, {client.stats.mismatches} mismatches, "
                    f"{time.monotonic() - started:.0f} s",
                    file=sys.stderr,
                    flush=True,
                )

        await asyncio.to_thread(one)
        alive = client.alive()
        await client.stop()
    stats = client.stats.as_json()
    return {
        "config": {
            "sessions": args.sessions,
            "max_ops": args.max_ops,
            "seed": args.seed,
            "request_timeout_s": args.timeout,
            "python": platform.python_version(),
            "machine": platform.machine(),
        },
        "server_alive_at_end": alive,
        "server_stderr_tracebacks": client.server_tracebacks(),
        "wall_s": round(time.monotonic() - started, 1),
        **stats,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--max-ops", type=int, default=25)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=60.0, help="per-request timeout (s)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    result = asyncio.run(_main(args))
    rows = [
        ("sessions", result["sessions"]),
        ("operations", result["operations"]),
        ("requests", result["requests"]),
        ("notifications", result["notifications"]),
        ("JSON-RPC errors", result["rpc_errors"]),
        ("timeouts (hangs)", result["timeouts"]),
        ("crashes", result["crashes"]),
        ("mismatches", result["mismatches"]),
        ("invalid ranges", result["bad_ranges"]),
        ("diagnostics published", result["diagnostics_published"]),
        ("server tracebacks", result["server_stderr_tracebacks"]),
        ("slowest request (s)", result["slowest_request_s"]),
        ("time (s)", result["wall_s"]),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    if result["mismatch_kinds"]:
        print("mismatches by document feature:", json.dumps(result["mismatch_kinds"], sort_keys=True))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {args.out}")
    failed = result["timeouts"] or result["crashes"] or result["mismatches"] or result["bad_ranges"]
    return 1 if failed or not result["server_alive_at_end"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
