"""Reverse mode on the 164 HumanEval prompts, through the same entry point as `lift-lsp ir`: every function's
name and parameters recovered, and the doctest examples come back as IR examples with the right arguments and result."""

from __future__ import annotations

import ast
import doctest
import inspect
import sys

from lift_lsp.spec.ir import IR
from lift_lsp.spec.reverse import extract_file
from tests.figures import assert_figure
from tests.humaneval import problems


def _entry(prompt: str, name: str) -> ast.FunctionDef:
    return next(n for n in ast.walk(ast.parse(prompt)) if isinstance(n, ast.FunctionDef) and n.name == name)


def _norm(source: str) -> str:
    try:
        return ast.unparse(ast.parse(source.strip(), mode="eval"))
    except SyntaxError:
        return " ".join(source.split())


def _same_value(a: str, b: str) -> bool:
    try:
        return bool(ast.literal_eval(a) == ast.literal_eval(b))
    except (ValueError, SyntaxError, TypeError):
        return _norm(a) == _norm(b)


def _expected(example: doctest.Example) -> tuple[str, str] | None:
    """(call, result) as doctest means it: the output shown, or for `>>> f(x) == y` with no output, `y`."""
    want = example.want.strip()
    if want:
        return example.source.strip(), want
    try:
        node = ast.parse(example.source.strip(), mode="eval").body
    except SyntaxError:
        return None
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], ast.Eq):
        return ast.unparse(node.left), ast.unparse(node.comparators[0])
    return None


def test_names_parameters_and_doctest_examples_recovered() -> None:
    total = recovered = 0
    args_checked = args_right = 0
    missed: list[str] = []
    signatures_right = 0
    for problem in problems():
        entry = problem["entry_point"]
        functions = {f.function: f for f in extract_file(problem["prompt"], types=False)}
        if entry not in functions:
            missed.append(f"{problem['task_id']}: no function {entry}")
            continue
        ir: IR = functions[entry].ir
        node = _entry(problem["prompt"], entry)
        parameters = [(p.name, p.type) for p in ir.signature.parameters]
        written = [(a.arg, ast.unparse(a.annotation) if a.annotation else None) for a in node.args.args]
        if ir.signature.name == entry and parameters == written:
            signatures_right += 1
        else:
            missed.append(f"{problem['task_id']}: signature {parameters} != {written}")

        try:
            oracle = doctest.DocTestParser().get_examples(inspect.cleandoc(ast.get_docstring(node, clean=False) or ""))
        except ValueError:  # one prompt's docstring is not valid doctest syntax
            oracle = []
        for example in oracle:
            expected = _expected(example)
            if expected is None:
                continue  # a setup statement, not an example
            total += 1
            call_source, want = expected
            match = next(
                (e for e in ir.examples if _norm(e.call) == _norm(call_source) and e.result is not None),
                None,
            )
            if match is not None and match.result is not None and _same_value(match.result, want):
                recovered += 1
                call = next(
                    (
                        n
                        for n in ast.walk(ast.parse(call_source.strip(), mode="eval"))
                        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == entry
                    ),
                    None,
                )
                if call is not None and not call.keywords:
                    args_checked += 1
                    expected_args = {
                        p.name: _norm(ast.unparse(a)) for p, a in zip(ir.signature.parameters, call.args, strict=False)
                    }
                    got = {k: _norm(v) for k, v in match.args.items()}
                    args_right += got == expected_args
                    if got != expected_args:
                        missed.append(f"{problem['task_id']}: args {got} != {expected_args}")
            else:
                missed.append(f"{problem['task_id']}: {example.source.strip()} -> {want}")
    share = recovered / total
    print(
        f"\nHumanEval doctest examples recovered as IR examples: {recovered}/{total} ({share:.1%}); "
        f"arguments mapped to parameters: {args_right}/{args_checked}",
        file=sys.stderr,
    )
    for line in missed:
        print(f"  missed {line}", file=sys.stderr)
    assert_figure("functions whose name and parameters are recovered", f"{signatures_right} / {len(problems())}")
    assert share == 1.0, missed
    assert args_right == args_checked
