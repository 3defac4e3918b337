"""`lift-lsp check` against the standard library's doctest on real code: popular pure-Python libraries installed
from PyPI into a virtual environment of their own (the project's Python, from lift-lsp's point of view), and
standard-library modules with many doctests.

Both sides check the same files. The reference is doctest itself, run by that environment's Python in one process
(each module imported by its dotted name, `DocTestFinder` and `DocTestRunner` on every docstring, as `python -m
doctest` and `pytest --doctest-modules` run them); lift-lsp is one `lift-lsp check --python VENV/bin/python` run.
Compared docstring by docstring (functions, methods, classes, modules): the share of doctest's checkable examples
(SKIP left out) that lift-lsp ran, the docstrings whose verdicts (some example fails, or none) agree, the errors
lift-lsp reports where doctest passes (false errors), and the wall time of both runs (a ratio in the same run).

    .venv/bin/python -m bench.real_doctests [--out bench/results/real_doctests.json] [--venv DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

from bench.common import RESULTS, machine
from lift_lsp.check.project import module_target, python_files

LIBRARIES = [
    "more-itertools==11.2.1",
    "sortedcontainers==2.4.0",
    "toolz==1.2.0",
    "boltons==26.2.0",
    "humanize==4.17.0",
    "python-dateutil==4.0.0",
    "inflect==7.6.0",
]
PACKAGES = ["more_itertools", "sortedcontainers", "toolz", "boltons", "humanize", "dateutil", "inflect"]
STDLIB = [
    "statistics.py",
    "difflib.py",
    "collections/__init__.py",
    "fractions.py",
    "json/__init__.py",
    "enum.py",
    "pickletools.py",
    "textwrap.py",
    "ipaddress.py",
    "heapq.py",
]
"""Standard-library modules with doctests (pure Python; two of them with examples that doctest itself fails)."""

REFERENCE = textwrap.dedent(
    """
    import doctest, importlib, io, json, sys, time
    start = time.perf_counter()
    out = {}
    for file, name, root in json.loads(sys.argv[1]):
        sys.path.insert(0, root)
        try:
            module = importlib.import_module(name)
        except BaseException as exc:
            out[file] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        finally:
            sys.path.remove(root)
        tests = {}
        for test in doctest.DocTestFinder().find(module):
            if not test.examples:
                continue
            runner = doctest.DocTestRunner(verbose=False)
            saved = sys.stdout
            sys.stdout = io.StringIO()
            try:
                result = runner.run(test, out=lambda s: None)
            finally:
                sys.stdout = saved
            key = test.name[len(name) + 1:] if test.name != name else "<module>"
            tests[key] = {"attempted": result.attempted - getattr(result, "skipped", 0), "failed": result.failed}
        out[file] = {"tests": tests}
    print(json.dumps({"files": out, "seconds": time.perf_counter() - start}))
    """
)


def make_venv(venv: Path) -> Path:
    """The libraries' own environment (reused when it already holds them)."""
    python = venv / "bin" / "python"
    marker = venv / ".installed"
    if not marker.exists() or marker.read_text() != " ".join(LIBRARIES):
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True, timeout=300)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *LIBRARIES],
            check=True,
            timeout=600,
        )
        marker.write_text(" ".join(LIBRARIES))
    return python


def candidate_files(python: Path) -> list[str]:
    """Every module of the libraries (tests left out) and the standard-library modules, that has a `>>>`."""
    paths = json.loads(
        subprocess.run(
            [str(python), "-c", "import json, sysconfig; print(json.dumps(sysconfig.get_paths()))"],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
    )
    site, stdlib = Path(paths["purelib"]), Path(paths["stdlib"])
    files = [
        f
        for f in python_files([str(site / p) for p in PACKAGES])
        if "tests" not in Path(f).parts and "test" not in Path(f).parts
    ]
    files += [str(stdlib / name) for name in STDLIB]
    return [f for f in files if ">>>" in Path(f).read_text(encoding="utf-8", errors="replace")]


def timed(command: list[str]) -> tuple[subprocess.CompletedProcess[str], float]:
    """The finished command and its wall time in seconds. (CPU time is not compared: lift-lsp's sandbox processes
    die with their PID namespace, so no process's usage counts them.)"""
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    return done, time.perf_counter() - start


def run_reference(python: Path, files: list[str]) -> tuple[dict[str, Any], float]:
    targets = [[f, module_target(f).name, module_target(f).root] for f in files]
    done, wall = timed([str(python), "-c", REFERENCE, json.dumps(targets)])
    if done.returncode != 0:
        raise SystemExit(f"the doctest reference failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout)["files"], wall


def run_lift(python: Path, files: list[str], report: Path) -> float:
    command = [sys.executable, "-m", "lift_lsp.cli", "check", "--no-cache", "--python", str(python)]
    command += ["--report", str(report)]
    return timed([*command, *files])[1]


def compare(reference: dict[str, Any], lift: list[dict[str, Any]]) -> dict[str, Any]:
    by_file = {entry["file"]: entry for entry in lift}
    docstrings = examples = ran = agree = false_errors = doctest_failing = flagged = 0
    disagreements: list[str] = []
    per_library: dict[str, dict[str, int]] = {}
    for file, result in reference.items():
        entry = by_file.get(file, {"functions": [], "findings": []})
        statuses = {f["function"]: f for f in entry["functions"]}
        for name, expected in result.get("tests", {}).items():
            status = statuses.get(name, {"ran": 0, "failed": 0})
            errors = [f for f in entry["findings"] if f["function"] == name and f["severity"] == "error"]
            lift_fails = bool(status["failed"] or errors)
            docstrings += 1
            examples += expected["attempted"]
            ran += min(status["ran"], expected["attempted"])
            doctest_failing += bool(expected["failed"])
            flagged += bool(expected["failed"]) and lift_fails
            if lift_fails == bool(expected["failed"]):
                agree += 1
            else:
                disagreements.append(f"{file}:{name}: doctest failed {expected['failed']}, lift-lsp {status}")
            if errors and not expected["failed"]:
                false_errors += 1
            library = _library(file)
            row = per_library.setdefault(library, {"docstrings": 0, "examples": 0, "ran": 0})
            row["docstrings"] += 1
            row["examples"] += expected["attempted"]
            row["ran"] += min(status["ran"], expected["attempted"])
    return {
        "docstrings": docstrings,
        "examples": examples,
        "examples_ran": ran,
        "verdicts_agree": agree,
        "doctest_failing": doctest_failing,
        "failing_flagged": flagged,
        "false_errors": false_errors,
        "disagreements": disagreements,
        "libraries": per_library,
    }


def _library(file: str) -> str:
    parts = Path(file).parts
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1]
    return "standard library"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(RESULTS / "real_doctests.json"))
    parser.add_argument("--venv", default=str(RESULTS / "real-doctests-venv"))
    args = parser.parse_args(argv)
    python = make_venv(Path(args.venv))
    files = candidate_files(python)
    reference, doctest_s = run_reference(python, files)
    with tempfile.TemporaryDirectory() as tmp:
        report_path = Path(tmp) / "report.json"
        lift_s = run_lift(python, files, report_path)
        lift = json.loads(report_path.read_text())
    figures = compare(reference, lift)
    share = figures["examples_ran"] / max(figures["examples"], 1)
    agree = figures["verdicts_agree"] / max(figures["docstrings"], 1)
    ratio = lift_s / doctest_s
    print(f"{'library':20} {'docstrings':>10} {'examples':>9} {'ran':>6}")
    for library, row in sorted(figures["libraries"].items()):
        print(f"{library:20} {row['docstrings']:>10} {row['examples']:>9} {row['ran']:>6}")
    print(
        f"files: {len(files)}; docstrings with doctests (functions, methods, classes, modules): {figures['docstrings']}"
    )
    print(
        f"doctest's checkable examples run by lift-lsp: {figures['examples_ran']} / {figures['examples']} ({share:.1%})"
    )
    print(f"docstrings whose verdicts agree: {figures['verdicts_agree']} / {figures['docstrings']} ({agree:.1%})")
    print(f"docstrings doctest fails, flagged by lift-lsp: {figures['failing_flagged']} / {figures['doctest_failing']}")
    print(f"false errors (an error where doctest passes): {figures['false_errors']}")
    print(f"wall time: lift-lsp check {lift_s:.1f} s, doctest {doctest_s:.1f} s: {ratio:.2f}x")
    for line in figures["disagreements"]:
        print(f"  disagree: {line}")
    unimported = {f: r["error"] for f, r in reference.items() if "error" in r}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "machine": machine(),
                "libraries": LIBRARIES,
                "stdlib": STDLIB,
                "files": len(files),
                "not_importable_by_doctest": unimported,
                "figures": figures,
                "seconds": {"lift_lsp": lift_s, "doctest": doctest_s, "ratio": ratio},
            },
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
