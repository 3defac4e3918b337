"""`lift-lsp check` on large real trees against `python -m pytest --doctest-modules` on the same files, in the same
run: this Python's standard library (`Lib/`) and pure-Python packages from PyPI (their wheels downloaded with `pip
download --no-deps` and unzipped into a temporary folder; this process never imports them: both tools do, in their
own processes, with this Python and its installed packages).

For each tree: wall time and peak memory of each tool's whole process tree (the resident set sizes of the process and
all its descendants, sandbox workers included, summed; polled from /proc every 0.1 s), the examples each ran, pytest's
collection errors (counted, not hidden: `--continue-on-collection-errors`) against the modules lift-lsp could not
import, and docstring by docstring the verdicts (some example fails, or none) that differ, by category. Then
`lift-lsp check` once more with nothing changed: its time as a ratio of the first run's (the on-disk cache).
pytest runs only the doctest items (`bench/pytest_doctest_counts.py` deselects the trees' unit tests) and loads the
trees' own `conftest.py`, as a project's CI would; lift-lsp runs every example in its sandbox.

    nice -n 15 .venv/bin/python -m bench.project_scale [--trees networkx,sympy,stdlib] [--limit N] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import sysconfig
import tempfile
import time
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import REPO, RESULTS, machine, table, write_json
from lift_lsp.check.project import python_files

WHEELS = {"networkx": "networkx==3.6.1", "sympy": "sympy==1.14.0"}
"""The PyPI trees: the package (its import name) and the pinned wheel."""
STDLIB_LEFT_OUT = re.compile(
    r"/(test|tests|idle_test)/|/__main__\.py$|/python-config\.py$|/idlelib/idle\.py$|^{stdlib}/socket\.py$".format(
        stdlib=re.escape(sysconfig.get_paths()["stdlib"])
    )
)
"""Standard library files neither tool is given: the regression test suites (`Lib/test/` and the packages'
`tests/`: pytest cannot get through them, as it stops at the first module that exits when imported), the scripts
that run a program when imported (`__main__.py`, which pytest's doctest collector skips in a folder;
`python-config.py`; `idlelib/idle.py`): each stops pytest's whole session; and `socket.py`, whose
`create_server` example serves forever: pytest has no time limit (lift-lsp's sandbox stops it at its own)."""
PAGE = os.sysconf("SC_PAGE_SIZE")
STATS = re.compile(r"lift-lsp: (\d+) file\(s\) checked, (\d+) from the cache")


@dataclass
class Measured:
    wall_s: float
    peak_rss: int
    """Bytes: the largest sum of the process tree's resident sets seen."""
    returncode: int
    stdout: str
    stderr: str


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def tree_rss(root: int) -> int:
    """The summed resident set of `root` and all its descendants, in bytes."""
    children = _children()
    total, pending = 0, [root]
    while pending:
        pid = pending.pop()
        pending += children.get(pid, [])
        try:
            with open(f"/proc/{pid}/statm", "rb") as handle:
                total += int(handle.read().split()[1]) * PAGE
        except (OSError, IndexError, ValueError):
            continue
    return total


def measure(command: list[str], env: dict[str, str], cwd: Path, timeout_s: float) -> Measured:
    """Run `command`, polling its process tree's memory; its wall time, peak memory and output."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        process = subprocess.Popen(command, env=env, cwd=cwd, stdout=out, stderr=err)
        peak = 0
        while process.poll() is None:
            peak = max(peak, tree_rss(process.pid))
            if time.perf_counter() - start > timeout_s:
                process.kill()
            time.sleep(0.1)
        wall = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        text = (out.read().decode(errors="replace"), err.read().decode(errors="replace"))
    return Measured(wall, peak, process.returncode, *text)


def tree(name: str, folder: Path) -> tuple[Path, Path]:
    """(the root pytest and lift-lsp run from, the folder whose Python files are checked) of a tree."""
    if name == "stdlib":
        stdlib = Path(sysconfig.get_paths()["stdlib"])
        return stdlib, stdlib
    wheels = folder / "wheels"
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", "-d", str(wheels)]
    subprocess.run([*command, WHEELS[name]], check=True, capture_output=True, timeout=600)
    wheel = next(wheels.glob(f"{name}-*.whl"))
    root = folder / name
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(root)
    return root, root / name


def run_pytest(files: list[str], root: Path, out: Path) -> tuple[Measured, dict[str, Any]]:
    command = [sys.executable, "-m", "pytest", "--doctest-modules", "-q", "-p", "no:cacheprovider"]
    command += ["-p", "bench.pytest_doctest_counts", "--continue-on-collection-errors", "--rootdir", str(root)]
    command += ["-o", "addopts=", *files]
    env = {**os.environ, "PYTHONPATH": str(REPO), "BENCH_DOCTEST_OUT": str(out)}
    measured = measure(command, env, root, 3600)
    if not out.exists():
        raise SystemExit(f"pytest wrote no counts (exit {measured.returncode}):\n{measured.stdout[-3000:]}")
    return measured, json.loads(out.read_text())


def run_lift(files: list[str], root: Path, cache: Path, report: Path) -> tuple[Measured, list[dict[str, Any]]]:
    command = [sys.executable, "-m", "lift_lsp.cli", "check", "--cache-dir", str(cache), "--report", str(report)]
    measured = measure([*command, *files], dict(os.environ), root, 3600)
    if not report.exists():
        raise SystemExit(f"lift-lsp check wrote no report (exit {measured.returncode}):\n{measured.stderr[-3000:]}")
    return measured, json.loads(report.read_text())


def _lift_fails(entry: dict[str, Any], status: dict[str, Any], name: str) -> bool:
    errors = [f for f in entry["findings"] if f["function"] == name and f["severity"] == "error"]
    return bool(status.get("failed") or errors)


def category(entry: dict[str, Any], status: dict[str, Any], name: str, pytest_fails: bool) -> str:
    """Why the verdicts differ, in a few words (from lift-lsp's side: its reasons and messages)."""
    messages = " ".join(f["message"] for f in entry["findings"] if f["function"] in (name, "<module>"))
    reasons = " ".join(status.get("reasons", []))
    if not status.get("ran") and reasons:
        return f"lift-lsp could not run them: {reasons[:80]}"
    if not pytest_fails and "NameError" in messages:
        return "a name the module lacks (pytest's conftest puts it in the doctest namespace)"
    if "timed out" in messages or "time limit" in messages:
        return "lift-lsp's time limit"
    return "doctest fails in pytest only" if pytest_fails else "fails in lift-lsp only"


def compare(pytest_counts: dict[str, Any], lift: list[dict[str, Any]]) -> dict[str, Any]:
    """Docstring by docstring, over those pytest ran."""
    by_file = {str(Path(entry["file"]).resolve()): entry for entry in lift}
    compared = agree = 0
    categories: Counter[str] = Counter()
    samples: dict[str, list[str]] = {}
    for file, result in pytest_counts["files"].items():
        entry = by_file.get(str(Path(file).resolve()), {"functions": [], "findings": []})
        statuses = {f["function"]: f for f in entry["functions"]}
        for name, expected in result["tests"].items():
            status = statuses.get(name, {})
            pytest_fails = bool(expected["failed"])
            compared += 1
            if _lift_fails(entry, status, name) == pytest_fails:
                agree += 1
                continue
            why = category(entry, status, name, pytest_fails)
            categories[why] += 1
            samples.setdefault(why, [])
            if len(samples[why]) < 3:
                samples[why].append(f"{file}:{name}")
    return {"docstrings": compared, "agree": agree, "differ": dict(categories), "samples": samples}


def one_tree(name: str, folder: Path, limit: int | None) -> dict[str, Any]:
    root, package = tree(name, folder)
    files = [f for f in python_files([str(package)]) if name != "stdlib" or not STDLIB_LEFT_OUT.search(f)][:limit]
    pytest_run, counts = run_pytest(files, root, folder / f"{name}-pytest.json")
    cache = folder / f"{name}-cache"
    first, lift = run_lift(files, root, cache, folder / f"{name}-lift.json")
    second, _ = run_lift(files, root, cache, folder / f"{name}-lift-again.json")
    stats = STATS.search(second.stderr)
    module_failures = sum(1 for e in lift for f in e["findings"] if f["code"] == "LIFT014")
    return {
        "tree": name,
        "files": len(files),
        "pytest": {
            "wall_s": round(pytest_run.wall_s, 2),
            "peak_mib": round(pytest_run.peak_rss / 2**20, 1),
            "examples": sum(t["attempted"] for r in counts["files"].values() for t in r["tests"].values()),
            "collection_errors": len(counts["collection_errors"]),
            "collection_error_samples": dict(list(counts["collection_errors"].items())[:5]),
            "exit": pytest_run.returncode,
        },
        "lift": {
            "wall_s": round(first.wall_s, 2),
            "peak_mib": round(first.peak_rss / 2**20, 1),
            "examples": sum(f["ran"] for e in lift for f in e["functions"]),
            "modules_not_imported": module_failures,
            "exit": first.returncode,
            "cached_wall_s": round(second.wall_s, 2),
            "cached_stats": stats.group(0) if stats else second.stderr[-300:],
        },
        "time_ratio": round(first.wall_s / pytest_run.wall_s, 2),
        "cached_ratio": round(second.wall_s / first.wall_s, 3),
        "verdicts": compare(counts, lift),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trees", default="networkx", help="comma-separated: networkx, sympy, stdlib")
    parser.add_argument("--limit", type=int, help="the first N Python files of each tree (default: all)")
    parser.add_argument("--out", default=str(RESULTS / "project_scale.json"))
    args = parser.parse_args(argv)
    report: dict[str, Any] = {"machine": machine(), "limit": args.limit, "trees": []}
    with tempfile.TemporaryDirectory(prefix="lift-scale-") as tmp:
        for name in args.trees.split(","):
            report["trees"].append(one_tree(name, Path(tmp), args.limit))
            print(json.dumps(report["trees"][-1], indent=1), file=sys.stderr)
    rows = [
        [
            t["tree"],
            t["files"],
            f"{t['lift']['wall_s']} / {t['pytest']['wall_s']} s ({t['time_ratio']}x)",
            f"{t['lift']['peak_mib']} / {t['pytest']['peak_mib']} MiB",
            f"{t['lift']['examples']} / {t['pytest']['examples']}",
            f"{t['lift']['modules_not_imported']} / {t['pytest']['collection_errors']}",
            f"{t['verdicts']['agree']} / {t['verdicts']['docstrings']}",
            f"{t['lift']['cached_wall_s']} s ({t['cached_ratio']}x)",
        ]
        for t in report["trees"]
    ]
    header = ["tree", "files", "wall: lift-lsp / pytest", "peak memory", "examples run", "import failures"]
    print(table([*header, "verdicts agree", "cached re-run"], rows))
    print(f"written: {write_json(Path(args.out), report)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
