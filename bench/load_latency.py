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
import asyncio
import random
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lsprotocol import types
from pytest_lsp import LanguageClient

from bench.common import RESULTS, def_positions, generate_module, machine, summary_ms, table, timed, write_json
from tests.lsp_util import SERVER_COMMAND, code_actions, hover, launch, open_doc, start, stderr_to, stop

KINDS = ("hover", "codeAction")
Targets = dict[str, list[tuple[int, int]]]
"""Each kind of request's positions."""

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


async def measure(client: LanguageClient, kind: str, uri: str, targets: list[tuple[int, int]]) -> float:
    row, col = targets[0] if len(targets) == 1 else random.choice(targets)
    if kind == "hover":
        return (await timed(hover(client, uri, row, col)))[1]
    automatic = types.CodeActionTriggerKind.Automatic
    return (await timed(code_actions(client, uri, row, col, trigger=automatic)))[1]


def progress_titles(client: LanguageClient) -> dict[str, str]:
    """Progress token -> title of every work-done progress the server began (pytest-lsp's `progress_reports`)."""
    titles: dict[str, str] = {}
    for token, reports in client.progress_reports.items():
        values: list[object] = list(reports)  # pytest-lsp's annotation says ProgressParams; it keeps their values
        begun = next((v for v in values if isinstance(v, types.WorkDoneProgressBegin)), None)
        if begun is not None:
            titles[str(token)] = begun.title
    return titles


def accept_edits(client: LanguageClient) -> None:
    """The editor's side of `workspace/applyEdit`: every edit is applied (this client keeps no copy of the text)."""

    @client.feature(types.WORKSPACE_APPLY_EDIT)  # type: ignore[untyped-decorator]
    def apply(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
        return types.ApplyWorkspaceEditResult(applied=True)


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
            report = asyncio.run(run(root, url, model, args))
        finally:
            if model_proc is not None:
                model_proc.terminate()
                model_proc.wait(timeout=30)
    report["endpoint"] = {"url": url if args.url else "serve-model (tiny random-weight model)", "model": model}
    print_report(report)
    print(f"wrote {write_json(args.out, report)}")
    return 0


async def run(root: Path, url: str, model: str, args: argparse.Namespace) -> dict[str, Any]:
    text = generate_module(args.lines, args.seed).text
    big = root / "module.py"
    big.write_text(text)
    targets = {
        "hover": [(row, col) for row, col, _, _ in def_positions(text)],
        "codeAction": [(row, 0) for row, _, _, _ in def_positions(text)],
    }
    client = await launch(stderr_to(root / "lift-lsp.log", SERVER_COMMAND), cwd=root)
    accept_edits(client)
    try:
        async with asyncio.timeout(120):
            await start(client, settings(url, model), root)
        stubs = open_documents(client, root, big, text, args.generations)
        for kind in KINDS:  # the first request of each kind, and the background analysis
            await measure(client, kind, big.as_uri(), targets[kind])
        await asyncio.sleep(3)
        idle = {
            kind: [await measure(client, kind, big.as_uri(), targets[kind]) for _ in range(args.requests)]
            for kind in KINDS
        }
        generations = await under_load(client, stubs, big.as_uri(), targets, args)
    finally:
        await stop(client)
    loaded = generations.pop("latency")
    latency: dict[str, Any] = {}
    for kind in KINDS:
        latency[kind] = {"idle": summary_ms(idle[kind]), "under_load": summary_ms(loaded[kind])}
        idle_p50, load_p50 = latency[kind]["idle"]["p50_ms"], latency[kind]["under_load"].get("p50_ms")
        latency[kind]["p50_ratio"] = None if load_p50 is None else round(load_p50 / idle_p50, 2)
        latency[kind]["within_2x"] = load_p50 is not None and load_p50 <= 2 * idle_p50
    return {
        "config": {k: v for k, v in vars(args).items() if k != "out"} | {"out": str(args.out)},
        "machine": machine(),
        "generations": generations,
        "latency": latency,
    }


def open_documents(client: LanguageClient, root: Path, big: Path, text: str, generations: int) -> list[str]:
    """The file hovered in and `generations` stub documents opened: the stubs' URIs."""
    open_doc(client, big, text)
    stubs: list[str] = []
    for i in range(generations):
        path = root / f"stub{i}.py"
        path.write_text(STUB.format(i=i))
        stubs.append(open_doc(client, path))
    return stubs


async def under_load(
    client: LanguageClient, stubs: list[str], uri: str, targets: Targets, args: argparse.Namespace
) -> dict[str, Any]:
    """`lift.generate` on every stub at once, every other one cancelled through its progress token as soon as it
    shows; requests of each kind one after another while any generation is in flight. What became of the
    generations, and the requests' latencies (under "latency")."""
    started = time.perf_counter()
    generating = [
        asyncio.ensure_future(
            client.workspace_execute_command_async(
                types.ExecuteCommandParams(command="lift.generate", arguments=[stub, f"combine{i}", 1])
            )
        )
        for i, stub in enumerate(stubs)
    ]
    to_cancel = {f"Generating combine{i}" for i in range(0, args.generations, 2)}
    cancelled: set[str] = set()
    loaded: dict[str, list[float]] = {kind: [] for kind in KINDS}
    deadline = started + args.timeout
    while not all(g.done() for g in generating) and time.perf_counter() < deadline:
        for token, title in progress_titles(client).items():
            if title in to_cancel and token not in cancelled:
                client.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(token=token))
                cancelled.add(token)
        for kind in KINDS:
            loaded[kind].append(await measure(client, kind, uri, targets[kind]))
    wall = time.perf_counter() - started
    return {
        "started": len(generating),
        "cancel_requested": len(cancelled),
        **outcomes(generating),
        "wall_s": round(wall, 1),
        "latency": loaded,
    }


def outcomes(generating: Sequence[asyncio.Future[Any]]) -> dict[str, int]:
    """How many generations succeeded, were cancelled, failed (an error result or an error response) or had no
    answer (those are cancelled here)."""
    counts = {"ok": 0, "cancelled": 0, "failed": 0, "unanswered": 0}
    for generation in generating:
        if not generation.done():
            generation.cancel()
            counts["unanswered"] += 1
            continue
        result = None if generation.exception() is not None else generation.result()
        if isinstance(result, dict) and result.get("ok"):
            counts["ok"] += 1
        elif isinstance(result, dict) and result.get("message") == "cancelled":
            counts["cancelled"] += 1
        else:
            counts["failed"] += 1
    return counts


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
