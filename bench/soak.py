"""A long scripted editing session against lift-lsp over stdio: does the server stay steady?

    .venv/bin/python -m bench.soak [--cycles 800] [--lines 600] [--seed 0] [--tracemalloc] [--quick]

The session: one generated module (`--lines`) is opened; each cycle makes an incremental change (one docstring
example's expected result is made wrong, or made right again), saves, waits for that save's diagnostics, then asks
for a hover and a code action on the function it changed. Every 50 cycles the settings change (two sets, in turn,
that change the backend and the sandbox's time limits, so the check cache's keys change too); every 200 the document
is closed and opened again; 20 other documents are opened, hovered and closed along the way.

Each save's diagnostics are compared with `lift-lsp check`'s findings for the same text and settings (the same
function, `check_text`, run here): a save is *matched* when the published diagnostics are the same (line, code,
message), *lost* when none arrive within the time limit. After every cycle the server's resident memory, open file
descriptors, threads and child processes are read from /proc (Linux). Prints them by cycle, the hover and code
action latency early (the second tenth of the session) and late (the last tenth), and the goals (for 800 cycles:
resident memory growth over the second half < 1.5%, medians of the 20 cycles before the half and of the last 20; no
growth of file descriptors or threads after warm-up, medians of the first and last tenth; no child process left;
every save's diagnostics published and right; late hover p50 within 1.1x of early); writes
`bench/results/soak.json`.

`--tracemalloc` runs the server under tracemalloc, takes a snapshot after warm-up and one at the end (on SIGUSR1),
and prints the source lines whose allocations grew the most in between: where to look for a leak.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pickle
import random
import signal
import statistics
import sys
import tempfile
import time
import tracemalloc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsprotocol import types
from pytest_lsp import LanguageClient

from bench.common import REPO, RESULTS, def_positions, generate_module, machine, summary_ms, table, timed, write_json
from lift_lsp.check.checks import CheckCache, check_text
from lift_lsp.check.contracts import z3_engine
from lift_lsp.options import parse_options
from tests.lsp_util import (
    SERVER_COMMAND,
    DiagnosticsLog,
    close_doc,
    code_actions,
    configure,
    hover,
    launch,
    open_doc,
    replace_range,
    save_doc,
    server_pid,
    start,
    stderr_to,
    stop,
)

SETTINGS_EVERY = 50
REOPEN_EVERY = 200
OTHER_DOCUMENTS = 20
SOLVER_POOL = z3_engine._MAX_IDLE
"""Idle z3 solver processes the server keeps for reuse: its children while idle."""
WRONG = "'lift-soak'"
"""What an example's expected result becomes when the cycle makes it wrong."""
SETTINGS: tuple[dict[str, Any], ...] = tuple(
    {
        "backend": {"kind": "openai", "url": "http://127.0.0.1:9/v1", "model": model},
        "sandbox": {"exampleTimeoutS": timeout_s, "trustAll": True},  # the examples run, as `lift-lsp check` runs them
    }
    for model, timeout_s in (("a", 2.0), ("b", 3.0))
)
SNAPSHOT_SERVER = """
import os, pickle, signal, sys, tracemalloc
count = [0]
def snapshot(signum, frame):
    count[0] += 1
    path = os.path.join(os.environ["LIFT_SOAK_SNAPSHOTS"], f"snapshot-{count[0]}.pickle")
    with open(path + ".part", "wb") as out:
        pickle.dump(tracemalloc.take_snapshot(), out)
    os.replace(path + ".part", path)
signal.signal(signal.SIGUSR1, snapshot)
from lift_lsp.cli import main
sys.exit(main(["serve"]))
"""


@dataclass
class Probe:
    """The server process as /proc shows it."""

    pid: int
    children_seen: set[int] = field(default_factory=set)

    def status(self) -> dict[str, int]:
        fields = dict(line.split(":", 1) for line in Path(f"/proc/{self.pid}/status").read_text().splitlines())
        children = self.children()
        self.children_seen |= set(children)
        sandbox = sum(1 for pid in children if "worker.py" in _cmdline(pid))
        return {
            "rss_kb": int(fields["VmRSS"].split()[0]),
            "threads": int(fields["Threads"]),
            "fds": len(os.listdir(f"/proc/{self.pid}/fd")),
            "children": len(children),
            "sandbox_workers": sandbox,
        }

    def children(self) -> list[int]:
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    stat = Path(f"/proc/{entry}/stat").read_text()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) == self.pid:
                    found.append(int(entry))
        return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@dataclass
class Example:
    line: int
    original: str
    wrong: bool = False


class Document:
    """The client's copy of the module, with the example lines the cycles toggle."""

    def __init__(self, text: str) -> None:
        self.lines = text.split("\n")
        self.version = 1
        self.examples = [
            Example(row, self.lines[row])
            for row in range(1, len(self.lines))
            if self.lines[row - 1].strip().startswith(">>> ")
            and self.lines[row].strip()
            and not self.lines[row].strip().startswith((">>>", "Traceback"))
        ]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def toggle(self, example: Example) -> tuple[tuple[int, int], tuple[int, int], str]:
        """Make the example wrong (or right again); the incremental change that does it: (start, end, new text)."""
        old = self.lines[example.line]
        indent = old[: len(old) - len(old.lstrip())]
        example.wrong = not example.wrong
        new = indent + WRONG if example.wrong else example.original
        self.lines[example.line] = new
        self.version += 1
        return (example.line, 0), (example.line, len(old)), new

    def function_at(self, line: int) -> tuple[int, int]:
        """The name position of the `def` the line belongs to."""
        defs = [(row, col) for row, col, _, _ in def_positions(self.text) if row <= line]
        return defs[-1]


def expected(text: str, path: Path, settings: dict[str, Any], cache: CheckCache) -> list[tuple[int, str, str]]:
    options, _ = parse_options(settings)
    findings = check_text(text, str(path), options.diagnostics, options.sandbox, cache)
    return sorted((f.line - 1, f.code, f.message) for f in findings)


def published(params: types.PublishDiagnosticsParams) -> list[tuple[int, str, str]]:
    return sorted((d.range.start.line, str(d.code), d.message) for d in params.diagnostics)


def server_command(args: argparse.Namespace, root: Path) -> tuple[list[str], dict[str, str] | None, Path | None]:
    """The server's command and environment, and with `--tracemalloc` the folder its snapshots go to."""
    if not args.tracemalloc:
        return SERVER_COMMAND, None, None
    snapshots = root / "snapshots"
    snapshots.mkdir()
    env = {**os.environ, "LIFT_SOAK_SNAPSHOTS": str(snapshots)}
    return [sys.executable, "-X", "tracemalloc=12", "-c", SNAPSHOT_SERVER], env, snapshots


@dataclass
class Session:
    """One server (its stderr in the workspace's server.log), its settings and the diagnostics it published."""

    client: LanguageClient
    log: DiagnosticsLog
    probe: Probe
    wait_s: float
    snapshots: Path | None
    settings: dict[str, Any] = field(default_factory=lambda: SETTINGS[0])
    cache: CheckCache = field(default_factory=CheckCache)

    def open(self, path: Path, text: str, version: int) -> None:
        open_doc(self.client, path, text, version)

    def close_document(self, path: Path) -> None:
        close_doc(self.client, path.as_uri())

    async def diagnostics(self, path: Path, version: int) -> types.PublishDiagnosticsParams | None:
        """The diagnostics published for that version of the document (waiting up to the time limit)."""
        found = await self.log.wait(lambda p: p.uri == path.as_uri() and p.version == version, self.wait_s)
        return None if found is None else found.params

    async def hover(self, path: Path, at: tuple[int, int]) -> tuple[Any, float]:
        return await timed(hover(self.client, path.as_uri(), at[0], at[1] + 1))

    async def code_action(self, path: Path, at: tuple[int, int]) -> tuple[Any, float]:
        return await timed(code_actions(self.client, path.as_uri(), at[0], at[1] + 1))

    async def snapshot(self) -> Path:
        assert self.snapshots is not None, "the server runs without tracemalloc"
        before = set(self.snapshots.iterdir())
        os.kill(self.probe.pid, signal.SIGUSR1)
        for _ in range(600):
            new = [p for p in set(self.snapshots.iterdir()) - before if p.suffix == ".pickle"]
            if new:
                return new[0]
            await asyncio.sleep(0.1)
        raise SystemExit("the server wrote no tracemalloc snapshot")


async def begin(args: argparse.Namespace, root: Path) -> Session:
    """The server started in `root` and initialized with the first settings."""
    command, env, snapshots = server_command(args, root)
    log = DiagnosticsLog()
    client = await launch(stderr_to(root / "server.log", command), cwd=root, env=env, on_diagnostics=log.record)
    session = Session(client, log, Probe(server_pid(client)), args.wait_s, snapshots)
    try:
        async with asyncio.timeout(900 if args.tracemalloc else 120):
            await start(client, session.settings, root)
    except BaseException:
        await stop(client)
        raise
    return session


def growth(first: Path, last: Path, top: int) -> list[str]:
    with first.open("rb") as a, last.open("rb") as b:
        old: tracemalloc.Snapshot = pickle.load(a)
        new: tracemalloc.Snapshot = pickle.load(b)
    ignore = [
        tracemalloc.Filter(False, tracemalloc.__file__),
        tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
    ]
    stats = new.filter_traces(ignore).compare_to(old.filter_traces(ignore), "traceback")
    lines = []
    for stat in stats[:top]:
        recent = list(reversed(stat.traceback))[:4]  # a traceback lists the oldest frame first
        frames = "  <- ".join(f"{f.filename.removeprefix(str(REPO) + '/')}:{f.lineno}" for f in recent)
        lines.append(f"{stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+7d} blocks  {frames}")
    return lines


async def run(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    rng = random.Random(args.seed)
    path = root / "soak_module.py"
    doc = Document(generate_module(args.lines, args.seed).text)
    path.write_text(doc.text, encoding="utf-8")
    others = []
    for index in range(OTHER_DOCUMENTS):
        other = root / f"other_{index}.py"
        other.write_text(generate_module(max(args.lines // 2, 100), args.seed + 1 + index).text, encoding="utf-8")
        others.append(other)
    order = list(doc.examples)
    rng.shuffle(order)
    session = await begin(args, root)
    samples: list[dict[str, Any]] = []
    saves = {"saves": 0, "matched": 0, "mismatched": 0, "lost": 0}
    mismatches: list[dict[str, Any]] = []
    hovers: list[float] = []
    actions: list[float] = []
    snapshots: list[Path] = []
    other_every = max(args.cycles // OTHER_DOCUMENTS, 1)
    started = time.perf_counter()

    async def check_save(version: int) -> None:
        want = expected(doc.text, path, session.settings, session.cache)
        got = await session.diagnostics(path, version)
        saves["saves"] += 1
        if got is None:
            saves["lost"] += 1
        elif published(got) == want:
            saves["matched"] += 1
        else:
            saves["mismatched"] += 1
            mismatches.append({"version": version, "published": published(got), "expected": want})

    try:
        session.open(path, doc.text, doc.version)
        await check_save(doc.version)
        for cycle in range(1, args.cycles + 1):
            if cycle % SETTINGS_EVERY == 0:
                session.settings = SETTINGS[(cycle // SETTINGS_EVERY) % len(SETTINGS)]
                configure(session.client, session.settings)
            example = order[cycle % len(order)]
            change_start, change_end, new_text = doc.toggle(example)
            replace_range(session.client, path.as_uri(), doc.version, change_start, change_end, new_text)
            save_doc(session.client, path.as_uri())
            await check_save(doc.version)
            at = doc.function_at(example.line)
            result, seconds = await session.hover(path, at)
            hovers.append(seconds)
            if result is None:
                raise SystemExit(f"cycle {cycle}: no hover at {at}")
            actions.append((await session.code_action(path, at))[1])
            if cycle % other_every == 0 and len(others) > cycle // other_every - 1 >= 0:
                other = others[cycle // other_every - 1]
                text = other.read_text(encoding="utf-8")
                session.open(other, text, 1)
                row, col, _, _ = def_positions(text)[0]
                await session.hover(other, (row, col))
                session.close_document(other)
            if cycle % REOPEN_EVERY == 0:
                session.close_document(path)
                session.open(path, doc.text, doc.version)
                await check_save(doc.version)
            if args.tracemalloc and cycle == max(args.cycles // 4, 1):
                snapshots.append(await session.snapshot())
            samples.append({"cycle": cycle, "s": round(time.perf_counter() - started, 1), **session.probe.status()})
            if cycle % args.every == 0:
                last = samples[-1]
                print(
                    f"cycle {cycle}: rss {last['rss_kb'] / 1024:.1f} MiB, fds {last['fds']}, threads "
                    f"{last['threads']}, children {last['children']}, saves matched {saves['matched']}/"
                    f"{saves['saves']}",
                    flush=True,
                )
        if args.tracemalloc:
            snapshots.append(await session.snapshot())
        await asyncio.sleep(1.0)  # idle: a sandbox worker still alive now would be one left behind
        idle = session.probe.status()
    finally:
        pid = session.probe.pid
        await stop(session.client)
    left = sorted(p for p in session.probe.children_seen | set(session.probe.children()) if alive(p))
    return {
        "samples": samples,
        "saves": saves,
        "mismatches": mismatches[:5],
        "hover_s": hovers,
        "code_action_s": actions,
        "idle_at_end": idle,
        "children_left_after_exit": left,
        "server_pid": pid,
        "tracemalloc_growth": growth(snapshots[0], snapshots[-1], 25) if len(snapshots) == 2 else [],
        "examples_toggled": len(order),
        "wall_s": round(time.perf_counter() - started, 1),
    }


def steady(samples: list[dict[str, Any]], key: str, tenth: int) -> dict[str, Any]:
    """No growth after warm-up: the median of the last tenth of the session is no higher than that of the first
    (a sample taken while a check runs counts its transient threads and pipes; the maxima are reported too)."""
    first = [s[key] for s in samples[:tenth]]
    last = [s[key] for s in samples[-tenth:]]
    return {
        "first_tenth_median": statistics.median(first),
        "last_tenth_median": statistics.median(last),
        "first_tenth_max": max(first),
        "last_tenth_max": max(last),
        "met": statistics.median(last) <= statistics.median(first),
    }


def verdicts(result: dict[str, Any], cycles: int) -> dict[str, Any]:
    samples = result["samples"]
    tenth = max(cycles // 10, 1)
    warm = samples[tenth - 1]
    half = samples[cycles // 2 - 1]
    end = samples[-1]
    rss_half = statistics.median(s["rss_kb"] for s in samples[max(cycles // 2 - 20, 0) : cycles // 2])
    rss_end = statistics.median(s["rss_kb"] for s in samples[-20:])
    rss_growth = (rss_end - rss_half) / rss_half
    early = summary_ms(result["hover_s"][tenth : 2 * tenth])
    late = summary_ms(result["hover_s"][cycles - tenth : cycles])
    saves = result["saves"]
    return {
        "rss_mib": {
            "warm_up": round(warm["rss_kb"] / 1024, 1),
            "half": round(half["rss_kb"] / 1024, 1),
            "end": round(end["rss_kb"] / 1024, 1),
        },
        "rss_growth_second_half": {"value": round(rss_growth * 100, 2), "target": "< 1.5%", "met": rss_growth < 0.015},
        "fds": steady(samples, "fds", tenth),
        "threads": steady(samples, "threads", tenth),
        "children": {
            "idle_at_end": result["idle_at_end"]["children"],
            "sandbox_workers_idle_at_end": result["idle_at_end"]["sandbox_workers"],
            "most_while_idle": SOLVER_POOL,
            "left_after_exit": result["children_left_after_exit"],
            "met": result["idle_at_end"]["sandbox_workers"] == 0
            and result["idle_at_end"]["children"] <= SOLVER_POOL
            and not result["children_left_after_exit"],
        },
        "diagnostics": {**saves, "met": saves["matched"] == saves["saves"]},
        "hover_p50_ms": {
            "early": early.get("p50_ms"),
            "late": late.get("p50_ms"),
            "target": "late <= 1.1 * early",
            "met": late["p50_ms"] <= 1.1 * early["p50_ms"],
        },
        "code_action_p50_ms": {
            "early": summary_ms(result["code_action_s"][tenth : 2 * tenth]).get("p50_ms"),
            "late": summary_ms(result["code_action_s"][cycles - tenth : cycles]).get("p50_ms"),
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--cycles", type=int, default=800)
    parser.add_argument("--lines", type=int, default=600, help="lines of the edited module")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--every", type=int, default=50, help="print a line every this many cycles")
    parser.add_argument("--wait-s", type=float, default=120.0, help="how long a save's diagnostics may take")
    parser.add_argument("--tracemalloc", action="store_true", help="snapshot the server's allocations (slower)")
    parser.add_argument("--quick", action="store_true", help="a small run (40 cycles, 200 lines): for the smoke test")
    parser.add_argument("--out", type=Path, default=RESULTS / "soak.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.cycles, args.lines, args.every = min(args.cycles, 40), min(args.lines, 200), 10
    if not Path("/proc/self/status").exists():
        raise SystemExit("bench/soak.py reads the server's memory, descriptors and children from /proc (Linux)")
    with tempfile.TemporaryDirectory(prefix="lift-soak-") as tmp:
        result = asyncio.run(run(args, Path(tmp)))
    report = {
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "machine": machine(),
        "verdicts": verdicts(result, args.cycles),
        **result,
    }
    v = report["verdicts"]
    rows = [
        [s["cycle"], round(s["rss_kb"] / 1024, 1), s["fds"], s["threads"], s["children"]]
        for s in result["samples"]
        if s["cycle"] % args.every == 0
    ]
    print(table(["cycle", "RSS MiB", "fds", "threads", "children"], rows))
    print(
        f"saves: {v['diagnostics']['saves']}, diagnostics matched {v['diagnostics']['matched']}, mismatched "
        f"{v['diagnostics']['mismatched']}, lost {v['diagnostics']['lost']}; wall {result['wall_s']} s; "
        f"load average at start {report['machine']['loadavg_at_start']}"
    )
    print(
        f"hover p50 early {v['hover_p50_ms']['early']} ms, late {v['hover_p50_ms']['late']} ms; code action p50 "
        f"early {v['code_action_p50_ms']['early']} ms, late {v['code_action_p50_ms']['late']} ms"
    )
    print(
        f"goal RSS growth over the second half {v['rss_growth_second_half']['value']}% (< 1.5%) -> "
        f"{'MET' if v['rss_growth_second_half']['met'] else 'MISSED'}"
    )
    for name in ("fds", "threads"):
        g = v[name]
        print(
            f"goal no {name} growth after warm-up: median {g['first_tenth_median']} in the first tenth (max "
            f"{g['first_tenth_max']}), {g['last_tenth_median']} in the last (max {g['last_tenth_max']}) -> "
            f"{'MET' if g['met'] else 'MISSED'}"
        )
    c = v["children"]
    print(
        f"goal no child process left: {c['sandbox_workers_idle_at_end']} sandbox workers and {c['idle_at_end']} "
        f"children in all while idle at the end (the z3 pool keeps up to {SOLVER_POOL}), "
        f"{len(c['left_after_exit'])} after exit -> {'MET' if c['met'] else 'MISSED'}"
    )
    print(f"goal every save's diagnostics published and right -> {'MET' if v['diagnostics']['met'] else 'MISSED'}")
    print(f"goal late hover p50 within 1.1x of early -> {'MET' if v['hover_p50_ms']['met'] else 'MISSED'}")
    if result["tracemalloc_growth"]:
        print("largest allocation growth between the snapshots (tracemalloc, by traceback):")
        print("\n".join(result["tracemalloc_growth"]))
    print(f"wrote {write_json(args.out, report)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
