"""Hover and code-action latency of lift-lsp against jedi-language-server, in the same run, on the same documents.

    .venv/bin/python -m bench.lsp_latency [--lines 3000] [--requests 200] [--documents 8] [--seed 0] [--quick]
        [--only workspace_check]

Both servers run over stdio and are driven by the same client, the end-to-end tests' (pytest-lsp's `LanguageClient`,
tests/lsp_util.py, announcing VS Code's capabilities), one request at a time; latency is the wall time from sending a
request to having its decoded response (the client's own share is the same for both servers). Each scenario starts a
fresh server of each kind:

- `hover_one`, `hover_spread`, `code_action`: open a generated `--lines` file, wait for the server's first
  diagnostics of it (lift-lsp checks a file on open; this keeps that work out of the measurement), one warm-up
  request, then `--requests` hovers on one function's name, hovers on the names of different functions (seeded,
  the same for both servers), or code actions on different `def` lines.
- `after_open`: open `--documents` distinct generated files at once and, without waiting, hover over the
  functions of the first one (each server's background work on the documents competes with the requests).
- `first_generated`, `first_library`: open one file and at once ask for a hover on a function in its middle: the
  time from opening to that hover's answer and to the first diagnostics. The library file is
  `networkx/classes/graph.py`, a real module installed from PyPI (2,000 lines, hundreds of doctest lines).
- `workspace_check` (lift-lsp only: jedi-language-server has no such command): a workspace that holds a copy of
  this Python's standard library (`Lib/` without its tests, idlelib and site-packages; `--quick`: json and email
  only) beside the generated file; `--requests` hovers with no check running, then `lift.checkWorkspace` and
  hovers every `--pace-ms` until it answers (goal: p99 < 200 ms while it runs).

Prints a table, the ratios lift-lsp / jedi-language-server and the goals (hover p50 <= half of
jedi-language-server's for one function and spread over the file; code action p50 <= a tenth; after opening the
documents, hover p50 <= jedi-language-server's and p99 < 200 ms); writes `bench/results/lsp_latency.json`.
Timings depend on the machine and its load: compare the ratios, measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import random
import shutil
import sys
import sysconfig
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import LanguageClient

from bench.common import (
    RESULTS,
    def_positions,
    generate_module,
    machine,
    summary_ms,
    table,
    timed,
    venv_tool,
    write_json,
)
from tests.lsp_util import DiagnosticsLog, code_actions, hover, launch, open_doc, start, stderr_to, stop

LIFT = "lift-lsp"
JEDI = "jedi-language-server"
LIBRARY_MODULE = "networkx.classes.graph"
HOVER, CODE_ACTION = "textDocument/hover", "textDocument/codeAction"
CHECK_TIMEOUT_S = 1800.0
Position = tuple[int, int]


def server_commands() -> dict[str, list[str]]:
    jedi = venv_tool("jedi-language-server") or "jedi-language-server"
    return {LIFT: [sys.executable, "-m", "lift_lsp.cli"], JEDI: [jedi]}


def library_file() -> Path:
    spec = importlib.util.find_spec(LIBRARY_MODULE)
    if spec is None or spec.origin is None:
        raise SystemExit(f"{LIBRARY_MODULE} is not installed (it comes with the test extras)")
    return Path(spec.origin)


@dataclass(frozen=True)
class Document:
    path: Path
    text: str

    @property
    def uri(self) -> str:
        return self.path.as_uri()


def name_positions(text: str, count: int, rng: random.Random) -> list[Position]:
    """Positions inside the names of `count` different functions (repeating only once every one was used)."""
    defs = def_positions(text)[1:]
    chosen = rng.sample(defs, min(count, len(defs)))
    chosen += [rng.choice(defs) for _ in range(count - len(chosen))]
    return [(row, col + rng.randrange(len(name))) for row, col, name, _ in chosen]


def def_line_positions(text: str, count: int, rng: random.Random) -> list[Position]:
    defs = def_positions(text)[1:]
    chosen = rng.sample(defs, min(count, len(defs)))
    chosen += [rng.choice(defs) for _ in range(count - len(chosen))]
    return [(row, rng.randrange(max(col - 4, 0), width)) for row, col, _, width in chosen]


@dataclass
class Session:
    """One fresh server in a workspace folder, and the diagnostics it published."""

    client: LanguageClient
    diagnostics: DiagnosticsLog

    def open(self, doc: Document) -> float:
        open_doc(self.client, doc.path, doc.text)
        return time.perf_counter()

    async def first_diagnostics(self, doc: Document, timeout_s: float = 180) -> float | None:
        """When the document's first diagnostics arrived (perf_counter()), waiting for them up to the time limit."""
        published = await self.diagnostics.wait(lambda p: p.uri == doc.uri, timeout_s)
        return None if published is None else published.at

    async def ask(self, method: str, doc: Document, at: Position) -> tuple[Any, float]:
        """A hover or a code action (triggered automatically, as an editor's light bulb asks) at `at`, timed."""
        if method == HOVER:
            return await timed(hover(self.client, doc.uri, *at))
        return await timed(code_actions(self.client, doc.uri, *at, trigger=types.CodeActionTriggerKind.Automatic))


Body = Callable[[Session], Awaitable[dict[str, Any]]]


async def run_session(command: list[str], root: Path, log: Path, body: Body) -> dict[str, Any]:
    diagnostics = DiagnosticsLog()
    client = await launch(stderr_to(log, command), cwd=root, on_diagnostics=diagnostics.record)
    try:
        async with asyncio.timeout(120):
            await start(client, root=root)
        return await body(Session(client, diagnostics))
    except (TimeoutError, RuntimeError, JsonRpcException) as error:
        tail = log.read_bytes()[-3000:].decode(errors="replace")
        raise SystemExit(f"{command}: {type(error).__name__}: {error}\n{tail}") from error
    finally:
        await stop(client)


def run_scenario(command: list[str], root: Path, log: Path, body: Body) -> dict[str, Any]:
    """One scenario's measurements on a fresh server (its own event loop)."""
    return asyncio.run(run_session(command, root, log, body))


async def measured(session: Session, method: str, doc: Document, positions: list[Position]) -> dict[str, Any]:
    latencies: list[float] = []
    answered = 0
    for at in positions:
        result, seconds = await session.ask(method, doc, at)
        latencies.append(seconds)
        answered += result not in (None, [])
    return {**summary_ms(latencies), "answered": answered}


def settled_requests(doc: Document, method: str, warm: Position, positions: list[Position]) -> Body:
    async def body(session: Session) -> dict[str, Any]:
        opened = session.open(doc)
        diagnosed = await session.first_diagnostics(doc)
        _, first_s = await session.ask(method, doc, warm)
        return {
            **await measured(session, method, doc, positions),
            "open_to_diagnostics_ms": None if diagnosed is None else round((diagnosed - opened) * 1e3, 1),
            "warm_up_ms": round(first_s * 1e3, 3),
        }

    return body


def after_open(docs: list[Document], positions: list[Position]) -> Body:
    async def body(session: Session) -> dict[str, Any]:
        for doc in docs:
            session.open(doc)
        return await measured(session, HOVER, docs[0], positions)

    return body


def first_answers(doc: Document, at: Position) -> Body:
    async def body(session: Session) -> dict[str, Any]:
        opened = session.open(doc)
        result, _ = await session.ask(HOVER, doc, at)
        hovered = time.perf_counter()
        diagnosed = await session.first_diagnostics(doc)
        return {
            "first_hover_ms": round((hovered - opened) * 1e3, 1),
            "hover_answered": result is not None,
            "first_diagnostics_ms": None if diagnosed is None else round((diagnosed - opened) * 1e3, 1),
        }

    return body


STDLIB_LEFT_OUT = ("test", "idlelib", "site-packages", "__pycache__")
QUICK_PACKAGES = ("json", "email")


def copy_stdlib(to: Path, quick: bool) -> int:
    """This Python's standard library copied under `to` (never imported): the number of Python files copied."""
    lib = Path(sysconfig.get_paths()["stdlib"])
    if quick:
        for package in QUICK_PACKAGES:
            shutil.copytree(lib / package, to / package, ignore=shutil.ignore_patterns("__pycache__"))
    else:
        shutil.copytree(lib, to, ignore=shutil.ignore_patterns(*STDLIB_LEFT_OUT), symlinks=True)
    return sum(1 for _ in to.rglob("*.py"))


def during_workspace_check(doc: Document, positions: list[Position], pace_s: float) -> Body:
    """Hover latency with no check running, then while `lift.checkWorkspace` runs (hovers every `pace_s`)."""

    async def body(session: Session) -> dict[str, Any]:
        session.open(doc)
        await session.first_diagnostics(doc)
        await session.ask(HOVER, doc, positions[0])
        idle = await measured(session, HOVER, doc, positions)
        command = types.ExecuteCommandParams(command="lift.checkWorkspace", arguments=[])
        check = asyncio.ensure_future(timed(session.client.workspace_execute_command_async(command), CHECK_TIMEOUT_S))
        latencies: list[float] = []
        answered = 0
        while not check.done():
            result, seconds = await session.ask(HOVER, doc, positions[len(latencies) % len(positions)])
            latencies.append(seconds)
            answered += result is not None
            await asyncio.sleep(pace_s)
        totals, check_s = check.result()
        totals = totals or {}
        return {
            "idle": idle,
            "during_check": {**summary_ms(latencies), "answered": answered},
            "check": {"files": totals.get("files"), "findings": totals.get("findings")},
            "check_s": round(check_s, 1),
        }

    return body


def workspace_check_scenario(root: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The `workspace_check` scenario in a workspace of its own: the standard library's copy and one generated file."""
    workspace = root / "workspace"
    files = copy_stdlib(workspace / "Lib", args.quick)
    path = workspace / "generated.py"
    path.write_text(generate_module(args.lines, args.seed).text, encoding="utf-8")
    doc = Document(path, path.read_text(encoding="utf-8"))
    positions = name_positions(doc.text, args.requests, random.Random(args.seed))
    body = during_workspace_check(doc, positions, args.pace_ms / 1e3)
    checked = run_scenario(server_commands()[LIFT], workspace, root / "lift-lsp-workspace_check.log", body)
    return checked | {"stdlib_files": files}


def middle_name(text: str) -> Position:
    defs = def_positions(text)
    row, col, name, _ = defs[len(defs) // 2]
    return row, col + len(name) // 2


def plan(root: Path, args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """The first generated file's statistics, and every scenario (its documents and request parameters): seeded,
    the same for both servers."""
    rng = random.Random(args.seed)
    docs = []
    for index in range(args.documents):
        path = root / f"generated_{index}.py"
        generated = generate_module(args.lines, args.seed + index)
        path.write_text(generated.text, encoding="utf-8")
        docs.append(Document(path, path.read_text(encoding="utf-8")))
        if index == 0:
            first_file = generated.stats()
    main = docs[0]
    defs = def_positions(main.text)
    one = (defs[len(defs) // 3][0], defs[len(defs) // 3][1] + 1)
    library = library_file()
    library_doc = Document(library, library.read_text(encoding="utf-8"))
    hover_warm = (defs[0][0], defs[0][1])
    return first_file, {
        "hover_one": settled_requests(main, HOVER, hover_warm, [one] * args.requests),
        "hover_spread": settled_requests(main, HOVER, hover_warm, name_positions(main.text, args.requests, rng)),
        "code_action": settled_requests(
            main, CODE_ACTION, (defs[0][0], 0), def_line_positions(main.text, args.requests, rng)
        ),
        "after_open": after_open(docs, name_positions(main.text, args.requests, rng)),
        "first_generated": first_answers(main, middle_name(main.text)),
        "first_library": first_answers(library_doc, middle_name(library_doc.text)),
    }


def goals(servers: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    lift, jedi = servers[LIFT], servers[JEDI]

    def goal(scenario: str, key: str, factor: float, target: str) -> dict[str, Any]:
        ours, theirs = lift[scenario][key], jedi[scenario][key]
        return {"lift_ms": ours, "jedi_ms": theirs, "target": target, "met": ours <= factor * theirs}

    out = {
        "hover_one_p50": goal("hover_one", "p50_ms", 0.5, "lift-lsp p50 <= 0.5 * jedi-language-server p50"),
        "hover_spread_p50": goal("hover_spread", "p50_ms", 0.5, "lift-lsp p50 <= 0.5 * jedi-language-server p50"),
        "code_action_p50": goal("code_action", "p50_ms", 0.1, "lift-lsp p50 <= 0.1 * jedi-language-server p50"),
        "after_open_p50": goal("after_open", "p50_ms", 1.0, "lift-lsp p50 <= jedi-language-server p50"),
    }
    p99 = lift["after_open"]["p99_ms"]
    out["after_open_p99"] = {
        "lift_ms": p99,
        "jedi_ms": jedi["after_open"]["p99_ms"],
        "target": "< 200 ms",
        "met": p99 < 200,
    }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--lines", type=int, default=3000, help="lines of each generated file")
    parser.add_argument("--requests", type=int, default=200, help="measured requests per server and scenario")
    parser.add_argument("--documents", type=int, default=8, help="documents opened at once in `after_open`")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="a small run (400 lines, 10 requests, 2 documents)")
    parser.add_argument("--pace-ms", type=float, default=20, help="between two hovers during the workspace check")
    parser.add_argument("--only", choices=["workspace_check"], help="run only this scenario (lift-lsp alone)")
    parser.add_argument("--out", type=Path, default=RESULTS / "lsp_latency.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.lines, args.requests, args.documents = min(args.lines, 400), min(args.requests, 10), 2
    if args.only:
        return workspace_check_only(args)

    commands = server_commands()
    servers: dict[str, dict[str, Any]] = {name: {"command": command} for name, command in commands.items()}
    with tempfile.TemporaryDirectory(prefix="lift-bench-lsp-") as tmp:
        root = Path(tmp)
        stats, scenarios = plan(root, args)
        for scenario, body in scenarios.items():
            for name, command in commands.items():
                servers[name][scenario] = run_scenario(command, root, root / f"{name}-{scenario}.log", body)
        checked = workspace_check_scenario(root, args)
    report = {
        "config": vars(args) | {"out": str(args.out), "library": LIBRARY_MODULE},
        "machine": machine(),
        "file": stats,
        "servers": servers,
        "workspace_check": checked,
        "goals": goals(servers) | workspace_check_goal(checked),
    }
    print(
        f"{args.lines}-line generated files (seed {args.seed}; the first: {stats['functions']} functions, "
        f"{stats['stubs']} stubs, {stats['examples']} examples), {args.requests} requests per server and scenario, "
        f"{args.documents} documents in after_open; load average at start {report['machine']['loadavg_at_start']}"
    )
    rows = []
    for scenario in ("hover_one", "hover_spread", "code_action", "after_open"):
        for name in commands:
            r = servers[name][scenario]
            rows.append(
                [f"{scenario} {name}", r["n"], r["answered"], r["p50_ms"], r["p95_ms"], r["p99_ms"], r["max_ms"]]
            )
        ratio = servers[LIFT][scenario]["p50_ms"] / servers[JEDI][scenario]["p50_ms"]
        rows.append([f"{scenario} p50 ratio lift/jedi", "", "", f"{ratio:.3f}", "", "", ""])
    print(table(["scenario server", "n", "answered", "p50 ms", "p95 ms", "p99 ms", "max ms"], rows))
    rows = [
        [
            f"{scenario} {name}",
            servers[name][scenario]["first_hover_ms"],
            servers[name][scenario]["first_diagnostics_ms"] or float("nan"),
        ]
        for scenario in ("first_generated", "first_library")
        for name in commands
    ]
    print(table(["opened file server", "open -> first hover ms", "open -> first diagnostics ms"], rows))
    print_workspace_check(checked)
    for goal, g in report["goals"].items():
        verdict = "MET" if g["met"] else "MISSED"
        peer = f"jedi {g['jedi_ms']:.2f} ms" if "jedi_ms" in g else f"no check running {g['idle_ms']:.2f} ms"
        print(f"goal {goal}: {g['target']}: lift {g['lift_ms']:.2f} ms vs {peer} -> {verdict}")
    print(f"wrote {write_json(args.out, report)}")
    return 0


def workspace_check_goal(checked: dict[str, Any]) -> dict[str, dict[str, Any]]:
    p99 = checked["during_check"]["p99_ms"]
    return {
        "workspace_check_p99": {
            "lift_ms": p99,
            "idle_ms": checked["idle"]["p99_ms"],
            "target": "hover p99 < 200 ms while the workspace check runs",
            "met": p99 < 200,
        }
    }


def print_workspace_check(checked: dict[str, Any]) -> None:
    rows = [
        [f"workspace_check lift-lsp {when}", r["n"], r["answered"], r["p50_ms"], r["p95_ms"], r["p99_ms"], r["max_ms"]]
        for when, r in (("no check running", checked["idle"]), ("during the check", checked["during_check"]))
    ]
    print(
        f"workspace check: {checked['check']['files']} files checked ({checked['stdlib_files']} standard-library "
        f"files copied) in {checked['check_s']} s"
    )
    print(table(["scenario server", "n", "answered", "p50 ms", "p95 ms", "p99 ms", "max ms"], rows))


def workspace_check_only(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="lift-bench-lsp-") as tmp:
        checked = workspace_check_scenario(Path(tmp), args)
    report = {
        "config": vars(args) | {"out": str(args.out)},
        "machine": machine(),
        "workspace_check": checked,
        "goals": workspace_check_goal(checked),
    }
    print_workspace_check(checked)
    goal = report["goals"]["workspace_check_p99"]
    print(
        f"goal workspace_check_p99: {goal['target']}: lift {goal['lift_ms']:.2f} ms vs no check running "
        f"{goal['idle_ms']:.2f} ms -> {'MET' if goal['met'] else 'MISSED'}"
    )
    print(f"wrote {write_json(args.out, report)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
