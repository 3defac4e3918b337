"""Hover and code-action latency of lift-lsp while generations run, against the same server idle.

    .venv/bin/python -m bench.load_latency [--url URL --model M] [--generations 10] [--requests 100] [--seed 0]

One lift-lsp over stdio, one generated file to hover in (`--lines`), and `--generations` stub documents. First the
idle latency: `--requests` hovers and as many code actions at seeded positions. Then `lift.generate` on every stub
at once, half of them cancelled through their progress tokens as soon as they show, and the same kind of requests
sent one after another for as long as any generation is in flight. Prints p50/p95 idle and under load, the ratio
(goal: within 2x), and what became of the generations; writes `bench/results/load_latency.json`.

Without `--url` the endpoint is `lift-lsp serve-model` with the tests' tiny random-weight model (built here), so the
load is real constrained generation on this machine's CPU (which the model process shares with the server): the
latency figures are real; nothing here measures the quality of generated code.
"""

from __future__ import annotations

import argparse
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent

from bench.common import (  # noqa: E402
    RESULTS,
    LspClient,
    def_positions,
    generate_module,
    initialize,
    machine,
    summary_ms,
    table,
    write_json,
)

STUB = '''"""A stub to generate."""


def combine{i}(a: int, b: int) -> int:
    """Combine two numbers into one number."""
    ...
'''


def serve_tiny_model(workdir: Path) -> tuple[subprocess.Popen[str], str, str]:
    """`lift-lsp serve-model` with the tests' tiny random-weight model on a free port: (process, url, model)."""
    from tests.tiny_model import build_tiny_model

    model = str(build_tiny_model(workdir / "tiny-model"))
    command = [sys.executable, "-m", "lift_lsp.cli", "serve-model", "--model", model, "--port", "0"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        match = re.fullmatch(r"serving on (http://\S+)\n", proc.stdout.readline())
        if match:
            return proc, match.group(1), model
    proc.kill()
    raise SystemExit("serve-model did not start")


def settings(url: str, model: str) -> dict[str, Any]:
    return {
        "backend": {"kind": "openai", "url": url, "model": model, "constraintFormat": "ebnf", "maxRetries": 0},
        "generation": {"bodySyntax": "subset", "candidates": 1, "repairs": 0, "cache": False, "seed": 7},
        "diagnostics": {"onOpen": False, "onSave": False},
    }


def request_params(kind: str, uri: str, row: int, col: int) -> tuple[str, dict[str, Any]]:
    document, position = {"uri": uri}, {"line": row, "character": col}
    if kind == "hover":
        return "textDocument/hover", {"textDocument": document, "position": position}
    return "textDocument/codeAction", {
        "textDocument": document,
        "range": {"start": position, "end": position},
        "context": {"diagnostics": [], "triggerKind": 2},
    }


def measure(client: LspClient, kind: str, uri: str, targets: list[tuple[int, int]]) -> float:
    row, col = targets[0] if len(targets) == 1 else random.choice(targets)
    _, seconds = client.request(*request_params(kind, uri, row, col))
    return seconds


def progress_titles(client: LspClient) -> dict[str, str]:
    """Progress token -> title of every work-done progress the server began."""
    titles: dict[str, str] = {}
    for message in client.notifications:
        params = message.body.get("params") or {}
        value = params.get("value") if isinstance(params, dict) else None
        if message.body.get("method") == "$/progress" and isinstance(value, dict) and value.get("kind") == "begin":
            titles[str(params["token"])] = str(value.get("title"))
    return titles


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--url", help="an OpenAI-compatible endpoint; default: serve-model with the tiny model")
    parser.add_argument("--model", default="", help="the model name at --url")
    parser.add_argument("--generations", type=int, default=10)
    parser.add_argument("--requests", type=int, default=100, help="idle requests of each kind")
    parser.add_argument("--lines", type=int, default=1000, help="lines of the file hovered in")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for all generations")
    parser.add_argument("--out", type=Path, default=RESULTS / "load_latency.json")
    args = parser.parse_args(argv)
    random.seed(args.seed)

    with tempfile.TemporaryDirectory(prefix="lift-bench-load-") as tmp:
        root = Path(tmp)
        model_proc = None
        url, model = args.url, args.model
        if url is None:
            model_proc, url, model = serve_tiny_model(root)
        try:
            report = run(root, url, model, args)
        finally:
            if model_proc is not None:
                model_proc.terminate()
                model_proc.wait(timeout=30)
    report["endpoint"] = {"url": url if args.url else "serve-model (tiny random-weight model)", "model": model}
    print_report(report)
    print(f"wrote {write_json(args.out, report)}")
    return 0


def run(root: Path, url: str, model: str, args: argparse.Namespace) -> dict[str, Any]:
    text = generate_module(args.lines, args.seed).text
    big = root / "module.py"
    big.write_text(text)
    hover_targets = [(row, col) for row, col, _, _ in def_positions(text)]
    action_targets = [(row, 0) for row, _, _, _ in def_positions(text)]
    client = LspClient([sys.executable, "-m", "lift_lsp.cli"], cwd=str(root))
    try:
        initialize(client, root, settings(url, model))
        stubs: list[str] = []
        for i in range(args.generations):
            path = root / f"stub{i}.py"
            path.write_text(STUB.format(i=i))
            stubs.append(path.as_uri())
        for uri, doc_text in [(big.as_uri(), text), *((u, STUB.format(i=i)) for i, u in enumerate(stubs))]:
            doc = {"uri": uri, "languageId": "python", "version": 1, "text": doc_text}
            client.notify("textDocument/didOpen", {"textDocument": doc})
        for kind in ("hover", "codeAction"):  # the first request of each kind, and the background analysis
            measure(client, kind, big.as_uri(), hover_targets if kind == "hover" else action_targets)
        time.sleep(3)

        idle = {
            kind: [
                measure(client, kind, big.as_uri(), hover_targets if kind == "hover" else action_targets)
                for _ in range(args.requests)
            ]
            for kind in ("hover", "codeAction")
        }

        started = time.perf_counter()
        ids = {
            client.send_request(
                "workspace/executeCommand", {"command": "lift.generate", "arguments": [uri, f"combine{i}", 1]}
            ): i
            for i, uri in enumerate(stubs)
        }
        to_cancel = {f"Generating combine{i}" for i in range(0, args.generations, 2)}
        cancelled: set[str] = set()
        loaded: dict[str, list[float]] = {"hover": [], "codeAction": []}
        deadline = started + args.timeout
        while len(client.responses.keys() & ids.keys()) < len(ids) and time.perf_counter() < deadline:
            for token, title in progress_titles(client).items():
                if title in to_cancel and token not in cancelled:
                    client.notify("window/workDoneProgress/cancel", {"token": token})
                    cancelled.add(token)
            for kind in ("hover", "codeAction"):
                loaded[kind].append(
                    measure(client, kind, big.as_uri(), hover_targets if kind == "hover" else action_targets)
                )
        wall = time.perf_counter() - started
        outcomes = {"ok": 0, "cancelled": 0, "failed": 0, "unanswered": 0}
        for request_id in ids:
            message = client.responses.get(request_id)
            result = message.body.get("result") if message else None
            if message is None:
                outcomes["unanswered"] += 1
            elif isinstance(result, dict) and result.get("ok"):
                outcomes["ok"] += 1
            elif isinstance(result, dict) and result.get("message") == "cancelled":
                outcomes["cancelled"] += 1
            else:
                outcomes["failed"] += 1
    finally:
        client.close()

    latency: dict[str, Any] = {}
    for kind in ("hover", "codeAction"):
        latency[kind] = {"idle": summary_ms(idle[kind]), "under_load": summary_ms(loaded[kind])}
        idle_p50, load_p50 = latency[kind]["idle"]["p50_ms"], latency[kind]["under_load"].get("p50_ms")
        latency[kind]["p50_ratio"] = None if load_p50 is None else round(load_p50 / idle_p50, 2)
        latency[kind]["within_2x"] = load_p50 is not None and load_p50 <= 2 * idle_p50
    return {
        "config": {k: v for k, v in vars(args).items() if k != "out"} | {"out": str(args.out)},
        "machine": machine(),
        "generations": {"started": len(ids), "cancel_requested": len(cancelled), **outcomes, "wall_s": round(wall, 1)},
        "latency": latency,
    }


def print_report(report: dict[str, Any]) -> None:
    g = report["generations"]
    print(
        f"generations: {g['started']} started, {g['cancel_requested']} cancelled by the client; outcomes: "
        f"{g['ok']} ok, {g['cancelled']} cancelled, {g['failed']} failed, {g['unanswered']} unanswered; "
        f"{g['wall_s']} s ({report['endpoint']['url']})"
    )
    rows = []
    for kind, numbers in report["latency"].items():
        for state in ("idle", "under_load"):
            s = numbers[state]
            rows.append([f"{kind} {state}", s.get("n", 0), s.get("p50_ms"), s.get("p95_ms"), s.get("max_ms")])
    print(table(["request", "n", "p50 ms", "p95 ms", "max ms"], rows))
    for kind, numbers in report["latency"].items():
        verdict = "MET" if numbers["within_2x"] else "MISSED"
        print(f"goal {kind} p50 under load within 2x of idle: ratio {numbers['p50_ratio']} -> {verdict}")


if __name__ == "__main__":
    sys.exit(main())
