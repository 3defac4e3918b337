"""Hover and code-action latency of lift-lsp against jedi-language-server on one large generated file.

    .venv/bin/python bench/lsp_latency.py [--lines 3000] [--requests 200] [--seed 0] [--quick] [--profile]

Both servers run over stdio and are driven by the same minimal JSON-RPC client (bench/common.py), one request at
a time. For each server and request kind a fresh server is started: initialize, didOpen the file (written to a
temporary workspace), wait for the server's first diagnostics of it (lift-lsp checks a file on open; this keeps
that background work out of the measurements and is reported as `open_to_diagnostics_ms`), one warm-up request
(reported as `first_ms`), then `--requests` requests at seeded random positions, the same for both servers: hovers
on function names, code actions on `def` lines (a different function each time while there are functions left,
so the servers' per-function caches are not what is measured). Latency is the wall time from writing a request to
reading its response. Prints a table and the goal check (lift-lsp hover p50 <= jedi-language-server's; lift-lsp
code-action p50 <= half of jedi-language-server's) and writes `bench/results/lsp_latency.json`.

`--profile` also runs lift-lsp under cProfile (one more session per kind) and prints its top functions.
"""

from __future__ import annotations

import argparse
import io
import pstats
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.common import (  # noqa: E402
    RESULTS,
    LspClient,
    LspError,
    def_positions,
    generate_module,
    initialize,
    machine,
    summary_ms,
    table,
    venv_tool,
    write_json,
)

KINDS = ("hover", "codeAction")
LIFT = "lift-lsp"
JEDI = "jedi-language-server"


def server_commands() -> dict[str, list[str]]:
    jedi = venv_tool("jedi-language-server") or "jedi-language-server"
    return {LIFT: [sys.executable, "-m", "lift_lsp.cli"], JEDI: [jedi]}


def plan(text: str, requests: int, seed: int) -> dict[str, Any]:
    """The warm-up position and the measured positions of each kind: seeded, the same for every server."""
    defs = def_positions(text)
    if len(defs) < 2:
        raise SystemExit("the generated file has fewer than two functions")
    rng = random.Random(seed)
    warm, rest = defs[0], defs[1:]

    def pick() -> list[tuple[int, int, str, int]]:
        chosen = rng.sample(rest, min(requests, len(rest)))
        return chosen + [rng.choice(rest) for _ in range(requests - len(chosen))]

    hovers = [(row, col + rng.randrange(len(name))) for row, col, name, _ in pick()]
    actions = [(row, rng.randrange(col - 4 if col >= 4 else 0, width)) for row, col, _, width in pick()]
    return {
        "hover": {"warm": (warm[0], warm[1]), "positions": hovers},
        "codeAction": {"warm": (warm[0], 0), "positions": actions},
        "functions": len(defs),
    }


def params(kind: str, uri: str, row: int, col: int) -> dict[str, Any]:
    position = {"line": row, "character": col}
    if kind == "hover":
        return {"textDocument": {"uri": uri}, "position": position}
    return {
        "textDocument": {"uri": uri},
        "range": {"start": position, "end": position},
        "context": {"diagnostics": [], "triggerKind": 2},
    }


def method(kind: str) -> str:
    return "textDocument/hover" if kind == "hover" else "textDocument/codeAction"


def session(
    command: list[str], root: Path, path: Path, text: str, kind: str, positions: dict[str, Any], log: Path
) -> dict[str, Any]:
    """One fresh server: initialize, open, settle, warm up, then the measured requests of one kind."""
    uri = path.as_uri()
    with log.open("wb") as err:
        started = time.perf_counter()
        client = LspClient(command, cwd=str(root), stderr=err)
        try:
            initialize(client, root)
            init_s = time.perf_counter() - started
            client.notify(
                "textDocument/didOpen",
                {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": text}},
            )
            opened = time.perf_counter()
            diagnostics = client.wait_notification(
                "textDocument/publishDiagnostics", lambda p: isinstance(p, dict) and p.get("uri") == uri, 120
            )
            settle_s = (diagnostics.at - opened) if diagnostics else None
            _, first_s = client.request(method(kind), params(kind, uri, *positions["warm"]))
            latencies: list[float] = []
            answered = 0
            for row, col in positions["positions"]:
                result, seconds = client.request(method(kind), params(kind, uri, row, col))
                latencies.append(seconds)
                answered += result not in (None, [])
        except LspError as error:
            tail = log.read_bytes()[-3000:].decode(errors="replace")
            raise SystemExit(f"{command}: {error}\n{tail}") from error
        finally:
            client.close()
    return {
        **summary_ms(latencies),
        "answered": answered,
        "first_ms": round(first_s * 1e3, 3),
        "start_and_initialize_ms": round(init_s * 1e3, 3),
        "open_to_diagnostics_ms": None if settle_s is None else round(settle_s * 1e3, 3),
        "latencies_ms": [round(x * 1e3, 3) for x in latencies],
    }


def profile_lift(root: Path, path: Path, text: str, kind: str, positions: dict[str, Any], top: int) -> str:
    """lift-lsp under cProfile for one session; the top functions by cumulative time (the server's main thread:
    the request handlers; the on-open checks run in a worker thread and are not in it)."""
    out = root / f"lift-{kind}.prof"
    command = [sys.executable, "-m", "cProfile", "-o", str(out), "-m", "lift_lsp.cli"]
    session(command, root, path, text, kind, positions, root / f"lift-{kind}-profile.log")
    for _ in range(50):  # the profile is written as the process exits
        if out.exists():
            break
        time.sleep(0.1)
    if not out.exists():
        return f"(no profile written for {kind})"
    buffer = io.StringIO()
    stats = pstats.Stats(str(out), stream=buffer)
    stats.sort_stats("cumulative").print_stats(top)
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--lines", type=int, default=3000, help="lines of the generated file")
    parser.add_argument("--requests", type=int, default=200, help="measured requests per server and kind")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="a small run (400 lines, 10 requests): for the smoke test")
    parser.add_argument("--profile", action="store_true", help="also profile lift-lsp with cProfile")
    parser.add_argument("--out", type=Path, default=RESULTS / "lsp_latency.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.lines, args.requests = min(args.lines, 400), min(args.requests, 10)

    generated = generate_module(args.lines, args.seed)
    text = generated.text
    positions = plan(text, args.requests, args.seed)
    commands = server_commands()
    report: dict[str, Any] = {
        "config": {"lines": args.lines, "requests": args.requests, "seed": args.seed, "quick": args.quick},
        "machine": machine(),
        "file": {**generated.stats(), "defs": positions["functions"]},
        "servers": {name: {"command": command} for name, command in commands.items()},
    }
    profiles: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="lift-bench-lsp-") as tmp:
        root = Path(tmp)
        path = root / "generated_module.py"
        path.write_text(text, encoding="utf-8")
        for kind in KINDS:
            for name, command in commands.items():
                log = root / f"{name}-{kind}.log"
                report["servers"][name][kind] = session(command, root, path, text, kind, positions[kind], log)
        if args.profile:
            profiles = {kind: profile_lift(root, path, text, kind, positions[kind], 30) for kind in KINDS}

    lift, jedi = report["servers"][LIFT], report["servers"][JEDI]
    goals = {
        "hover_p50": {
            "lift_ms": lift["hover"]["p50_ms"],
            "jedi_ms": jedi["hover"]["p50_ms"],
            "target": "lift-lsp p50 <= jedi-language-server p50",
            "met": lift["hover"]["p50_ms"] <= jedi["hover"]["p50_ms"],
        },
        "code_action_p50": {
            "lift_ms": lift["codeAction"]["p50_ms"],
            "jedi_ms": jedi["codeAction"]["p50_ms"],
            "target": "lift-lsp p50 <= 0.5 * jedi-language-server p50",
            "met": lift["codeAction"]["p50_ms"] <= 0.5 * jedi["codeAction"]["p50_ms"],
        },
    }
    report["goals"] = goals

    stats = report["file"]
    print(
        f"file: {stats['lines']} lines, {stats['defs']} functions ({stats['methods']} methods, "
        f"{stats['stubs']} stubs), {stats['examples']} examples; "
        f"{args.requests} requests per server and kind, seed {args.seed}"
    )
    rows = []
    for kind in KINDS:
        for name in commands:
            r = report["servers"][name][kind]
            rows.append(
                [
                    f"{kind} {name}",
                    r["n"],
                    r["answered"],
                    r["p50_ms"],
                    r["p95_ms"],
                    r["mean_ms"],
                    r["max_ms"],
                    r["first_ms"],
                    r["open_to_diagnostics_ms"] if r["open_to_diagnostics_ms"] is not None else float("nan"),
                ]
            )
    header = ["request server", "n", "answered", "p50 ms", "p95 ms", "mean ms", "max ms", "first ms", "open->diag ms"]
    print(table(header, rows))
    for goal, g in goals.items():
        verdict = "MET" if g["met"] else "MISSED"
        print(f"goal {goal}: {g['target']}: lift {g['lift_ms']:.1f} ms vs jedi {g['jedi_ms']:.1f} ms -> {verdict}")
    for kind, text_ in profiles.items():
        print(f"\n== cProfile of lift-lsp, {kind} session (main thread, cumulative)\n{text_}")
    print(f"wrote {write_json(args.out, report)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
