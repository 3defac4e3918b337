"""`lift-lsp check` on HumanEval's canonical solutions and on mutants of them.

The oracle runs apart from lift-lsp's checker: Python's own `doctest` runs each docstring's `>>>` examples against the
code, unchanged (as `python -m doctest` would), and the prose examples lift-lsp reads (`f(x) ➞ y`) are evaluated
directly and compared by value, each case in its own process with a hard time limit. A function whose examples pass
must get no error; one whose examples fail must get an error; a mutant that makes an example fail must be flagged.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

from lift_lsp.check.checks import CheckCache, check_text
from lift_lsp.spec.reverse import read_spec
from lift_lsp.spec.sites import find_sites
from tests.figures import assert_figure
from tests.humaneval import problems

ORACLE = textwrap.dedent(
    """
    import doctest, json, math, signal, sys

    def alarm(signum, frame):
        raise TimeoutError("oracle timeout")

    def agrees(value, expected_source, namespace):
        expected = eval(expected_source, namespace)
        if repr(value) == repr(expected):
            return True
        try:
            same = value == expected
            return bool(same) if isinstance(same, bool) else False
        except Exception:
            return False

    signal.signal(signal.SIGALRM, alarm)
    results = []
    for source, name, prose in [json.load(sys.stdin)]:
        namespace = {"__name__": "oracle"}
        signal.alarm(3)
        try:
            exec(compile(source, "<oracle>", "exec"), namespace)
            runner = doctest.DocTestRunner(verbose=False)
            failed = attempted = 0
            for test in doctest.DocTestFinder(recurse=False).find(namespace[name], name, globs=namespace):
                outcome = runner.run(test, out=lambda s: None)
                failed += outcome.failed
                attempted += outcome.attempted
            for call, result in prose:
                try:
                    failed += not agrees(eval(call, namespace), result, namespace)
                except NameError:
                    continue  # written with a placeholder name (`f(a) => 1`): not runnable as it stands
                except TimeoutError:
                    raise
                except Exception:
                    failed += 1
                attempted += 1
            results.append([attempted, failed])
        except TimeoutError:  # a mutant that loops counts as failing
            results.append([1, 1])
        except BaseException:
            results.append([0, 0])
        finally:
            signal.alarm(0)
    json.dump(results[0], sys.stdout)
    """
)


def prose_examples(source: str, entry: str) -> list[tuple[str, str]]:
    """The examples lift-lsp reads from prose (not `>>>` lines), as (call, result): the oracle evaluates them itself."""
    site = next(s for s in find_sites(source) if s.name == entry)
    lines = source.split("\n")
    return [
        (e.call, e.result)
        for e in read_spec(site).examples
        if e.result is not None and e.line is not None and ">>>" not in lines[e.line - 1]
    ]


def doctest_oracle(cases: list[tuple[str, str]]) -> list[tuple[int, int]]:
    """(attempted, failed) examples for each (module source, function name): its doctests, run by `doctest`, and
    its prose examples evaluated and compared by value and by repr."""

    def one(case: tuple[str, str]) -> tuple[int, int]:
        source, name = case
        payload = json.dumps([source, name, prose_examples(source, name)])
        try:
            done = subprocess.run(
                [sys.executable, "-c", ORACLE], input=payload, capture_output=True, text=True, timeout=10
            )
        except subprocess.TimeoutExpired:
            return 1, 1  # stuck where no alarm reaches (inside C code): a mutant that hangs fails its examples
        assert done.returncode == 0, done.stderr[-2000:]
        attempted, failed = json.loads(done.stdout)
        return attempted, failed

    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(one, cases))


@lru_cache(maxsize=1)
def canonical_oracle() -> tuple[tuple[int, int], ...]:
    return tuple(doctest_oracle([(p["prompt"] + p["canonical_solution"], p["entry_point"]) for p in problems()]))


def _errors(source: str, entry: str, cache: CheckCache | None = None) -> list[str]:
    return [
        f"{f.code} {f.message}"
        for f in check_text(source, f"{entry}.py", cache=cache)
        if f.severity == "error" and f.function == entry
    ]


def test_canonical_solutions_errors_exactly_where_examples_are_wrong() -> None:
    cases = [(p["prompt"] + p["canonical_solution"], p["entry_point"]) for p in problems()]
    oracle = canonical_oracle()
    right = wrong = 0
    false_alarms: list[str] = []
    missed: list[str] = []
    for problem, (source, entry), (_attempted, failed) in zip(problems(), cases, oracle, strict=True):
        errors = _errors(source, entry)
        if failed:
            wrong += 1
            if not errors:
                missed.append(problem["task_id"])
        else:
            right += 1
            if errors:
                false_alarms.append(f"{problem['task_id']}: {errors}")
    print(
        f"\nHumanEval canonical solutions: {right} with right doctests -> {len(false_alarms)} with an error; "
        f"{wrong} with a wrong doctest -> {wrong - len(missed)} flagged",
        file=sys.stderr,
    )
    for line in false_alarms:
        print(f"  error on a function whose doctests pass: {line}", file=sys.stderr)
    assert_figure(
        "canonical solutions whose examples pass (doctest, unchanged; prose examples by value): "
        "functions with an error",
        f"{len(false_alarms)} of {right}",
    )
    assert_figure(
        "canonical solutions with an example doctest fails (e.g. `\"21\"` written for `'21'`, "
        "`>>> f(x) == y` with no output): flagged",
        f"{wrong - len(missed)} of {wrong}",
    )


_OPERATORS: dict[type, type] = {
    ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Add, ast.FloorDiv: ast.Mult, ast.Mod: ast.FloorDiv,
    ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq, ast.NotEq: ast.Eq,
}  # fmt: skip


def mutants(source: str, entry: str, limit: int) -> list[str]:
    """Up to `limit` versions of the module with one operator, comparison or integer constant of `entry` changed."""
    out: list[str] = []
    tree = ast.parse(source)
    function = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == entry)
    sites = [n for n in ast.walk(function) if isinstance(n, ast.BinOp | ast.Compare | ast.Constant)]
    for index in range(len(sites)):
        mutated = ast.parse(source)
        target = [
            n
            for n in ast.walk(next(f for f in ast.walk(mutated) if isinstance(f, ast.FunctionDef) and f.name == entry))
            if isinstance(n, ast.BinOp | ast.Compare | ast.Constant)
        ][index]
        if isinstance(target, ast.BinOp) and type(target.op) in _OPERATORS:
            target.op = _OPERATORS[type(target.op)]()
        elif isinstance(target, ast.Compare) and type(target.ops[0]) in _OPERATORS:
            target.ops[0] = _OPERATORS[type(target.ops[0])]()
        elif isinstance(target, ast.Constant) and type(target.value) is int:
            target.value += 1
        else:
            continue
        out.append(ast.unparse(mutated))
        if len(out) == limit:
            break
    return out


def test_mutants_that_break_a_doctest_are_flagged() -> None:
    cases: list[tuple[str, str]] = []
    for problem in problems():
        source = problem["prompt"] + problem["canonical_solution"]
        cases += [(m, problem["entry_point"]) for m in mutants(source, problem["entry_point"], limit=2)]
    oracle = doctest_oracle(cases)
    canonical = dict(zip([p["entry_point"] for p in problems()], canonical_oracle(), strict=True))
    breaking = flagged = 0
    unflagged: list[str] = []
    cache = CheckCache()
    for (source, entry), (_, failed) in zip(cases, oracle, strict=True):
        if not failed or canonical[entry][1]:
            continue  # the mutant passes its doctests, or the original already fails them
        breaking += 1
        if _errors(source, entry, cache):
            flagged += 1
        else:
            unflagged.append(entry)
    share = flagged / breaking
    print(
        f"\nHumanEval mutants: {len(cases)} made, {breaking} break a doctest, {flagged} flagged ({share:.1%})",
        file=sys.stderr,
    )
    if unflagged:
        print(f"  not flagged: {unflagged}", file=sys.stderr)
    assert_figure(
        "mutants (one operator, comparison or constant changed) that break an example: flagged",
        f"{flagged} of {breaking} ({share:.0%})",
    )
