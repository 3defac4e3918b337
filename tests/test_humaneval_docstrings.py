"""`parse_docstring` on the 164 HumanEval prompts, against two oracles: the doctest module's own reading of the
`>>>` examples, and the canonical solutions, which must confirm the examples read from every form."""

from __future__ import annotations

import ast
import doctest
import json
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from typing import Any

from lift_lsp.spec.docstrings import DocSpec, ParamShape, parse_docstring
from lift_lsp.spec.ir import ParamKind
from tests.figures import assert_figure
from tests.humaneval import problems

_STATED = re.compile(r"input\s*:|for\s+\w+\s*=|\w+\s*=|(assert\s+)?\w+\(", re.IGNORECASE)
"""The first line of an example written without a call of the function: `Input: ...`, `For x = 1, ...`, `arr = [...]`,
or a call named after another function (`grade_equation([4.0]) ==> ['A+']`)."""


@dataclass
class Read:
    problem: dict[str, Any]
    raw: str
    doc: DocSpec


def _raw_docstring(prompt: str, name: str) -> tuple[str | None, ast.FunctionDef]:
    """The entry point's docstring as written in the file (between the quotes, not dedented), and its node."""
    node = next(n for n in ast.walk(ast.parse(prompt)) if isinstance(n, ast.FunctionDef) and n.name == name)
    first = node.body[0]
    if not (
        isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str)
    ):
        return None, node
    segment = ast.get_source_segment(prompt, first) or ""
    segment = segment.lstrip("rRuU")
    quote = segment[:3] if segment[:3] in ('"""', "'''") else segment[0]
    return segment[len(quote) : -len(quote)], node


def _shapes(node: ast.FunctionDef) -> list[ParamShape]:
    args = node.args
    shapes = [ParamShape(a.arg, ParamKind.POSITIONAL_ONLY) for a in args.posonlyargs]
    shapes += [ParamShape(a.arg, ParamKind.POSITIONAL_OR_KEYWORD) for a in args.args]
    if args.vararg:
        shapes.append(ParamShape(args.vararg.arg, ParamKind.VAR_POSITIONAL))
    shapes += [ParamShape(a.arg, ParamKind.KEYWORD_ONLY) for a in args.kwonlyargs]
    if args.kwarg:
        shapes.append(ParamShape(args.kwarg.arg, ParamKind.VAR_KEYWORD))
    return shapes


def _read_all() -> list[Read]:
    reads = []
    for problem in problems():
        raw, node = _raw_docstring(problem["prompt"], problem["entry_point"])
        if raw is not None:
            reads.append(Read(problem, raw, parse_docstring(raw, problem["entry_point"], _shapes(node))))
    return reads


def _norm(source: str) -> str:
    try:
        return ast.unparse(ast.parse(source.strip(), mode="eval"))
    except SyntaxError:
        return " ".join(source.split())


def _same_value(a: str, b: str) -> bool:
    try:
        return bool(ast.literal_eval(a) == ast.literal_eval(b))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return _norm(a) == _norm(b)


def _expected(example: doctest.Example) -> tuple[str, str | None, str | None]:
    """What doctest's reading of an example means as (call, result, raises): an empty output shows `None`; an
    `a == b` that shows `True` (or nothing, as an assertion) states that `a` returns `b`."""
    source, want = example.source.strip(), example.want.strip()
    if example.exc_msg is not None:
        return source, None, want.splitlines()[-1].split(":")[0]
    tree = ast.parse(source, mode="exec").body[0]
    test = tree.test if isinstance(tree, ast.Assert) else tree.value if isinstance(tree, ast.Expr) else None
    if (
        isinstance(test, ast.Compare)
        and len(test.ops) == 1
        and isinstance(test.ops[0], ast.Eq)
        and want in ("", "True")
    ):
        return ast.unparse(test.left), ast.unparse(test.comparators[0]), None
    return source, want or "None", None


def test_doctest_examples_match_the_doctest_parser_and_lines() -> None:
    total = recovered = args_checked = args_right = 0
    missed: list[str] = []
    for read in _read_all():
        params = [p.name for p in _shapes(_raw_docstring(read.problem["prompt"], read.problem["entry_point"])[1])]
        lines = read.raw.split("\n")
        for found in read.doc.examples:  # every example points at the line where it is written
            assert found.line is not None, found
            written = lines[found.line]
            assert read.problem["entry_point"] in written or _STATED.match(written.strip()), (found, written)
        for example in doctest.DocTestParser().get_examples(read.raw):
            total += 1
            call, result, raises = _expected(example)
            same = [e for e in read.doc.examples if _norm(e.call) == _norm(call) and e.line == example.lineno]
            hit = next(
                (
                    e
                    for e in same
                    if (e.raises == raises if raises else e.result is not None and _same_value(e.result, result or ""))
                ),
                None,
            )
            if hit is not None:
                recovered += 1
                node = ast.parse(call, mode="eval").body
                entry = read.problem["entry_point"]
                if isinstance(node, ast.Call) and ast.unparse(node.func) == entry and not node.keywords:
                    args_checked += 1  # a direct call: its arguments map to the parameters by position
                    args_right += {k: _norm(v) for k, v in hit.args.items()} == {
                        name: _norm(ast.unparse(arg)) for name, arg in zip(params, node.args, strict=False)
                    }
            else:
                missed.append(f"{read.problem['task_id']}: {example.source.strip()} -> {example.want.strip()!r}")
    share = recovered / total
    _report(
        [
            f"doctest examples: {total}, recovered: {recovered} ({share:.1%}); "
            f"arguments mapped to parameters: {args_right}/{args_checked}",
            *(f"  missed {m}" for m in missed),
        ]
    )
    assert_figure(
        "doctest examples recovered as IR examples (arguments and result)", f"{recovered} / {total} ({share:.0%})"
    )
    assert args_checked >= 150 and args_right == args_checked


_RUNNER = r"""
import json, math, signal, sys

def alarm(signum, frame):
    raise TimeoutError("example took too long")

signal.signal(signal.SIGALRM, alarm)
out = []
for task in json.load(sys.stdin):
    ns = {}
    try:
        signal.alarm(10)
        exec(task["code"], ns)
    except BaseException as exc:
        out.append([f"module failed: {exc!r}"] * len(task["examples"]))
        continue
    finally:
        signal.alarm(0)
    results = []
    for call, result in task["examples"]:
        try:
            signal.alarm(5)
            got, want = eval(call, ns), eval(result, ns)
            same = got == want or (
                isinstance(got, float) and isinstance(want, (int, float)) and math.isclose(got, want, rel_tol=1e-6)
            )
            results.append("ok" if same else f"got {got!r}")
        except BaseException as exc:
            results.append(f"raised {exc!r}")
        finally:
            signal.alarm(0)
    out.append(results)
print(json.dumps(out))
"""


def test_every_form_confirmed_by_the_canonical_solutions() -> None:
    reads = _read_all()
    tasks = [
        {
            "code": r.problem["prompt"] + r.problem["canonical_solution"],
            "examples": [[e.call, e.result] for e in r.doc.examples if e.result is not None],
        }
        for r in reads
    ]
    done = subprocess.run(
        [sys.executable, "-c", _RUNNER], input=json.dumps(tasks), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    verdicts = json.loads(done.stdout)

    extracted = confirmed = 0
    failed: list[str] = []
    for read, task, outcome in zip(reads, tasks, verdicts, strict=True):
        for (call, result), verdict in zip(task["examples"], outcome, strict=True):
            extracted += 1
            if verdict == "ok":
                confirmed += 1
            else:
                failed.append(f"{read.problem['task_id']}: {call} -> {result}: {verdict}")

    example_lines = recovered_lines = 0
    for read in reads:
        starts = {e.line for e in read.doc.examples}
        call = re.compile(rf"\b{re.escape(read.problem['entry_point'])}\(")
        in_doctest = False
        for index, line in enumerate(read.raw.split("\n")):
            in_doctest = line.strip().startswith(">>>") or (in_doctest and bool(line.strip()))
            if not in_doctest and call.search(line):
                example_lines += 1
                recovered_lines += index in starts

    share, lines_share = confirmed / extracted, recovered_lines / example_lines
    _report(
        [
            f"examples extracted (all forms, with a result): {extracted}",
            f"confirmed by the canonical solution: {confirmed} ({share:.1%})",
            f"prose example lines (mentioning `entry_point(` outside doctests): {example_lines}, "
            f"read as examples: {recovered_lines} ({lines_share:.1%})",
            *(f"  not confirmed {f}" for f in failed),
        ]
    )
    assert_figure(
        "examples of every form extracted / confirmed by the canonical solution",
        f"{extracted} / {confirmed} ({share:.1%})",
    )
    assert_figure(
        "prose example lines (`f(x) ➞ y`, `=>`, `returns`, ...) read as examples "
        "(not: non-literal arguments, results of another type)",
        f"{recovered_lines} / {example_lines} ({lines_share:.1%})",
    )


def _report(lines: list[str]) -> None:
    text = textwrap.indent("\n".join(lines), "  ")
    print(f"\nHumanEval docstrings:\n{text}")
    print(f"\nHumanEval docstrings:\n{text}", file=sys.stderr)
