"""Contracts: the corpus of tests/contracts_corpus/ checked by lift-lsp and by CrossHair's own command, side by side.

Each category file (int, float, str, list, dict, mutation) is checked twice, each time in a fresh process:
- lift-lsp: `check_text` as `lift-lsp check` runs it, with `contracts.conditionTimeoutS` = the budget;
- CrossHair: `crosshair check --analysis_kind=PEP316 --per_condition_timeout=BUDGET --report_all FILE`.
A function counts as found when the tool reports an error inside it (lift-lsp: LIFT012, every one replayed;
CrossHair: any `error:` line). Against the corpus labels (`BUGS` in each file: the functions that break their
contract): found, missed, false alarms (an error on a correct function); proved: lift-lsp's z3 proofs (LIFT013) and
CrossHair confirmations (LIFT016 / CrossHair's "Confirmed over all paths"). Time: wall clock (lift-lsp runs its
engines in 2 sandbox workers, its default; CPU time is not compared: the sandbox's processes die with their PID
namespace, so their time is counted in no process's usage). Prints a table, writes JSON.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import REPO, RESULTS, machine, table, venv_tool, write_json

CORPUS = REPO / "tests" / "contracts_corpus"
CATEGORIES = ("ints", "floats", "strs", "lists", "dicts", "mutation")
LIFT = """
import json, sys
from lift_lsp.check.checks import check_text
from lift_lsp.options import ContractOptions
path, budget = sys.argv[1], float(sys.argv[2])
options = ContractOptions(condition_timeout_s=budget, file_timeout_s=3600)
found = check_text(open(path, encoding="utf-8").read(), path, contracts=options)
print(json.dumps([{"function": f.function, "code": f.code, "message": f.message} for f in found]))
"""
_CROSSHAIR_LINE = re.compile(r"^(?P<path>.*?):(?P<line>\d+): (?P<kind>error|info): (?P<message>.*)$")


def labels(path: Path) -> tuple[list[str], set[str]]:
    """The corpus file's functions (in order) and those its `BUGS` dict labels buggy."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    functions = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    bugs: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "BUGS" for t in node.targets):
            bugs = set(ast.literal_eval(node.value))
    return functions, bugs


def spans(path: Path) -> list[tuple[str, int, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [(n.name, n.lineno, n.end_lineno or n.lineno) for n in tree.body if isinstance(n, ast.FunctionDef)]


def timed(command: list[str], cwd: Path) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Wall-clock seconds of a command, and its result."""
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=7200, check=False)
    return time.perf_counter() - started, done


def run_lift(path: Path, budget: float) -> dict[str, Any]:
    wall, done = timed([sys.executable, "-c", LIFT, str(path), str(budget)], REPO)
    if done.returncode != 0:
        raise SystemExit(f"lift-lsp failed on {path}:\n{done.stderr}")
    findings = json.loads(done.stdout)
    return {
        "errors": sorted({f["function"] for f in findings if f["code"] == "LIFT012"}),
        "proved": sorted({f["function"] for f in findings if f["code"] == "LIFT013"}),
        "confirmed": sorted({f["function"] for f in findings if f["code"] == "LIFT016"}),
        "not_checked": sorted({f["function"] for f in findings if f["code"] == "LIFT015"}),
        "wall_s": round(wall, 2),
    }


def run_crosshair(path: Path, budget: float) -> dict[str, Any]:
    crosshair = venv_tool("crosshair") or "crosshair"
    command = [crosshair, "check", "--analysis_kind=PEP316", f"--per_condition_timeout={budget}", "--report_all"]
    wall, done = timed([*command, path.name], path.parent)
    owner = spans(path)
    errors: set[str] = set()
    confirmed: set[str] = set()
    for line in done.stdout.splitlines():
        match = _CROSSHAIR_LINE.match(line)
        if match is None:
            continue
        number = int(match["line"])
        function = next((name for name, start, end in owner if start <= number <= end), None)
        if function is None:
            continue
        if match["kind"] == "error":
            errors.add(function)
        elif "Confirmed over all paths" in match["message"]:
            confirmed.add(function)
    return {"errors": sorted(errors), "confirmed": sorted(confirmed), "wall_s": round(wall, 2)}


def score(result: dict[str, Any], functions: list[str], bugs: set[str]) -> dict[str, Any]:
    errors = set(result["errors"])
    return {
        "found": sorted(errors & bugs),
        "missed": sorted(bugs - errors),
        "false_alarms": sorted(errors - bugs),
        "proofs": len(result.get("proved", [])) + len(result["confirmed"]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--budget", type=float, default=2.0, help="CPU seconds per postcondition, for both tools")
    parser.add_argument("--categories", nargs="+", default=list(CATEGORIES), choices=CATEGORIES)
    parser.add_argument("--out", type=Path, default=RESULTS / "contracts.json")
    args = parser.parse_args(argv)

    report: dict[str, Any] = {"machine": machine(), "budget_s": args.budget, "categories": {}}
    rows: list[list[object]] = []
    totals = {tool: {"found": 0, "missed": 0, "false_alarms": 0, "proved": 0, "wall_s": 0.0}
              for tool in ("lift-lsp", "crosshair")}  # fmt: skip
    found_by = {"lift-lsp": set(), "crosshair": set()}
    for category in args.categories:
        path = CORPUS / f"{category}.py"
        functions, bugs = labels(path)
        entry: dict[str, Any] = {"functions": len(functions), "buggy": len(bugs)}
        for tool, run in (("lift-lsp", run_lift), ("crosshair", run_crosshair)):
            result = run(path, args.budget)
            scored = score(result, functions, bugs)
            entry[tool] = {**result, **scored}
            found_by[tool] |= {f"{category}.{name}" for name in scored["found"]}
            for key in ("found", "missed", "false_alarms"):
                totals[tool][key] += len(scored[key])
            totals[tool]["proved"] += scored["proofs"]
            totals[tool]["wall_s"] += result["wall_s"]
            rows.append(
                [
                    f"{category} ({len(bugs)} buggy of {len(functions)})",
                    tool,
                    len(scored["found"]),
                    len(scored["missed"]),
                    len(scored["false_alarms"]),
                    scored["proofs"],
                    f"{result['wall_s']:.1f}",
                ]
            )
        report["categories"][category] = entry
        print(
            f"{category}: lift-lsp {entry['lift-lsp']['wall_s']} s, crosshair {entry['crosshair']['wall_s']} s",
            flush=True,
        )
    for tool in ("lift-lsp", "crosshair"):
        t = totals[tool]
        rows.append(["all", tool, t["found"], t["missed"], t["false_alarms"], t["proved"], f"{t['wall_s']:.1f}"])
    lift, crosshair = totals["lift-lsp"], totals["crosshair"]
    report["totals"] = totals
    report["goal"] = {
        "finds_every_crosshair_bug": found_by["crosshair"] <= found_by["lift-lsp"],
        "only_lift_lsp": sorted(found_by["lift-lsp"] - found_by["crosshair"]),
        "only_crosshair": sorted(found_by["crosshair"] - found_by["lift-lsp"]),
        "no_false_alarm": lift["false_alarms"] == 0,
        "wall_ratio": round(lift["wall_s"] / crosshair["wall_s"], 3) if crosshair["wall_s"] else None,
    }
    header = ["category", "tool", "found", "missed", "false alarms", "proved", "wall s"]
    print(table(header, rows))
    goal = report["goal"]
    print(
        f"lift-lsp finds every bug CrossHair finds: {goal['finds_every_crosshair_bug']}"
        f" (only lift-lsp: {', '.join(goal['only_lift_lsp']) or 'none'};"
        f" only CrossHair: {', '.join(goal['only_crosshair']) or 'none'});"
        f" wall time lift-lsp / CrossHair: {goal['wall_ratio']} (goal: at most 0.333)"
    )
    print(write_json(args.out, report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
