"""Worker side: Hypothesis as the fast first pass over a function's postconditions.

Inputs are drawn with `hypothesis.strategies.from_type` from the parameters' annotations, with these additions: an
`int` or `float` parameter stays within the bounds its preconditions set with constants (`0 <= t <= 1`,
`abs(x) <= 1e300`); strings are also repeats of one letter and words of a small alphabet, so that two of them are
equal, prefixes of each other or share characters; integers are also the edges of machine integers
and of floats' exact ones (`2**31 - 1`, `-(2**31)`, `2**64 - 1`, `2**53 + 1`); floats are also whole numbers and the
edges of the format (the largest, `2**53`, subnormal ones), where rounding and overflow show; and every type is also
drawn from the constants of the function's code and contract (`x == 104729`, `s == "hunter2"`, an int also one off),
which reach the branches that compare with them. Inputs are kept only when the preconditions hold; a bounded number
of examples, within a CPU-time budget, derandomized (the same inputs on every run), no example database. A violation
is shrunk by Hypothesis to a small one, whose inputs come back as Python source for the replay.
"""

from __future__ import annotations

import ast
import inspect
import math
import sys
import time
import types
import typing
from dataclasses import dataclass
from typing import Any

from lift_lsp.check.contracts.replay import Attempt, Contract, attempt, copy_args, literal, safe_repr


class Unsupported(Exception):
    """Hypothesis cannot draw this function's inputs."""


_SMALL_ALPHABET = "ab0 "


def strategies(contract: Contract) -> dict[str, Any]:
    """A strategy per parameter, from its annotation (or its default when it has no annotation)."""
    from hypothesis import strategies as st

    try:
        signature = inspect.signature(contract.fn)
        hints = typing.get_type_hints(contract.fn)
    except Exception as exc:
        raise Unsupported(f"its annotations cannot be read: {type(exc).__name__}: {exc}") from None
    found = code_constants(contract)
    st.register_type_strategy(str, _strings(found.strings))
    st.register_type_strategy(int, _ints(-math.inf, math.inf, found.ints))
    st.register_type_strategy(float, _floats(-math.inf, math.inf, found.floats))
    bounds = precondition_bounds([expr for expr, _ in contract.pre], set(signature.parameters))
    drawn: dict[str, Any] = {}
    for name, param in signature.parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        low, high = bounds.get(name, (-math.inf, math.inf))
        if hints.get(name) is int and (math.isfinite(low) or math.isfinite(high)):
            drawn[name] = _ints(low, high, found.ints)
        elif hints.get(name) is float and (math.isfinite(low) or math.isfinite(high)):
            drawn[name] = _floats(low, high, found.floats)
        elif name in hints:
            drawn[name] = st.from_type(hints[name])
        elif param.default is not param.empty:
            drawn[name] = st.just(param.default)
        else:
            raise Unsupported(f"parameter `{name}` has no type annotation")
    return drawn


@dataclass(frozen=True)
class Constants:
    """The literals of a function's code and contract, by type: inputs equal to them (an int also one off) reach
    the branches that compare with them."""

    ints: tuple[int, ...] = ()
    floats: tuple[float, ...] = ()
    strings: tuple[str, ...] = ()


_MAX_CONSTANTS = 64
"""Of each type, the first ones in the code (and of ints, one off them too)."""
_MAX_STRING = 100


def code_constants(contract: Contract) -> Constants:
    """The constants of the function's code (its nested functions and comprehensions too, not its docstring) and of
    its conditions, as CPython compiled them (`-(2**31)` folded to one number)."""
    main = getattr(contract.fn, "__code__", None)
    codes = [
        *([main] if isinstance(main, types.CodeType) else []),
        *(code for _, code in (*contract.pre, *contract.post)),
    ]
    doc = getattr(contract.fn, "__doc__", None)
    values: list[object] = []
    while codes:
        code = codes.pop(0)
        for value in code.co_consts:
            if isinstance(value, types.CodeType):
                codes.append(value)
            elif isinstance(value, tuple | frozenset):
                values.extend(sorted(value, key=repr))  # a frozenset's order changes with the hash seed
            elif value is not doc:
                values.append(value)
    ints = _first([v for v in values if isinstance(v, int) and not isinstance(v, bool)])
    floats = _first([v for v in values if isinstance(v, float) and math.isfinite(v)])
    strings = _first([v for v in values if isinstance(v, str) and len(v) <= _MAX_STRING])
    return Constants(tuple(sorted({n + step for n in ints for step in (-1, 0, 1)})), floats, strings)


def _first(values: list[Any]) -> tuple[Any, ...]:
    return tuple(dict.fromkeys(values))[:_MAX_CONSTANTS]


def _strings(found: tuple[str, ...]) -> Any:
    """Strings: repeats of one letter (`a`, `aa`: equal or prefixes of each other), from a small alphabet (sharing
    characters), any (what UTF-8 encodes), and the function's constants."""
    from hypothesis import strategies as st

    # not st.text()'s own alphabet, st.characters(codec="utf-8"): the same characters, but Hypothesis builds its
    # table of the codec (over a second) in every worker, where no cache of it is kept
    any_character = st.characters(exclude_categories=["Cs"])
    mixed = [st.text("a", max_size=4), st.text(_SMALL_ALPHABET, max_size=8), st.text(any_character)]
    return st.one_of(*mixed, *([st.sampled_from(found)] if found else []))


def _ints(low: float, high: float, found: tuple[int, ...]) -> Any:
    """Integers in [low, high]: Hypothesis's own, the edges of machine integers (8 to 64 bits, signed and unsigned)
    and of floats' exact integers, and the function's constants."""
    from hypothesis import strategies as st

    ints = st.integers(_int_bound(low, math.ceil), _int_bound(high, math.floor))
    special = sorted({n for n in (*_INT_EDGES, *found) if low <= n <= high})
    return st.one_of(ints, ints, st.sampled_from(special)) if special else ints


_INT_EDGES = (
    0,
    1,
    -1,
    *(edge for bits in (8, 16, 32, 64) for edge in (2 ** (bits - 1) - 1, -(2 ** (bits - 1)), 2**bits - 1, 2**bits)),
    2**53,
    2**53 + 1,
)


def _int_bound(value: float, to_int: Any) -> int | None:
    return int(to_int(value)) if math.isfinite(value) else None


def _floats(low: float, high: float, found: tuple[float, ...]) -> Any:
    """Floats in [low, high]: besides Hypothesis's own, whole numbers up to 2**64, the edges of the format (the
    largest float, 2**53, the smallest normal and subnormal), where rounding and overflow show, and the function's
    constants."""
    from hypothesis import strategies as st

    floats = st.floats(low if math.isfinite(low) else None, high if math.isfinite(high) else None)
    edges = sorted({v for e in (*_FLOAT_EDGES, *found) for v in (e, -e) if low <= v <= high})
    whole_low, whole_high = math.ceil(max(low, -(2.0**64))), math.floor(min(high, 2.0**64))
    mixed = [floats, floats]
    if whole_low <= whole_high:
        mixed.append(st.integers(whole_low, whole_high).map(float))
    if edges:
        mixed.append(st.sampled_from(edges))
    return st.one_of(*mixed)


_FLOAT_EDGES = (sys.float_info.max, sys.float_info.max / 2, 2.0**53, 1.0, 0.1, sys.float_info.min, 5e-324)


def precondition_bounds(preconditions: list[str], parameters: set[str]) -> dict[str, tuple[float, float]]:
    """Closed bounds on parameters that the preconditions compare with constants: `0 <= t <= 1`, `n > 0`,
    `abs(x) <= 1e300` (a strict bound is kept closed: the preconditions still filter every input)."""
    bounds: dict[str, tuple[float, float]] = {}

    def limit(name: str, low: float, high: float) -> None:
        old_low, old_high = bounds.get(name, (-math.inf, math.inf))
        bounds[name] = (max(old_low, low), min(old_high, high))

    for text in preconditions:
        try:
            tree = ast.parse(text, mode="eval").body
        except SyntaxError:
            continue
        parts = tree.values if isinstance(tree, ast.BoolOp) and isinstance(tree.op, ast.And) else [tree]
        for part in parts:
            if not isinstance(part, ast.Compare):
                continue
            terms = [part.left, *part.comparators]
            for left, op, right in zip(terms, part.ops, terms[1:], strict=False):
                if isinstance(op, ast.Gt | ast.GtE):
                    left, right = right, left
                elif not isinstance(op, ast.Lt | ast.LtE):
                    continue
                _bound(left, right, parameters, limit)
    return bounds


def _bound(smaller: ast.expr, larger: ast.expr, parameters: set[str], limit: Any) -> None:
    """Record `smaller <= larger` where one side is a parameter (or `abs` of one) and the other a constant."""
    for side, other, is_upper in ((smaller, larger, True), (larger, smaller, False)):
        name = _parameter(side, parameters)
        value = _constant(other)
        if name is None or value is None:
            continue
        is_abs = isinstance(side, ast.Call)
        if is_upper:
            limit(name, -value if is_abs else -math.inf, value)
        elif not is_abs:
            limit(name, value, math.inf)


def _parameter(node: ast.expr, parameters: set[str]) -> str | None:
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "abs" and len(node.args) == 1:
        node = node.args[0]
    return node.id if isinstance(node, ast.Name) and node.id in parameters else None


def _constant(node: ast.expr) -> float | None:
    """The value of a constant arithmetic expression (`2**31`, `-1e300`), or None."""
    if any(isinstance(n, ast.Name | ast.Call | ast.Attribute) for n in ast.walk(node)):
        return None
    try:
        value = eval(compile(ast.Expression(node), "<bound>", "eval"), {"__builtins__": {}})
    except Exception:
        return None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


class _Violated(Exception):
    pass


def check(contract: Contract, drawn: dict[str, Any], index: int, max_examples: int, cpu_s: float) -> dict[str, Any]:
    """Postcondition `index` tried on up to `max_examples` inputs: {"status": "refuted", "inputs", "detail"} with
    the shrunk counterexample, or {"status": "passed"}, or {"status": "not_checked", "detail"}; "examples": how
    many inputs met the preconditions and ran."""
    from hypothesis import HealthCheck, Phase, Verbosity, given, reject, settings
    from hypothesis.errors import HypothesisException, Unsatisfiable

    stop = time.process_time() + cpu_s
    ran = 0
    found: tuple[dict[str, Any], Attempt] | None = None

    def body(**args: Any) -> None:
        nonlocal ran, found
        if found is None and time.process_time() > stop:
            return  # out of time: the remaining examples pass unrun (once a violation is found, shrinking goes on)
        before = copy_args(args)
        judged = attempt(contract, args, [index])
        if judged.status == "rejected":
            reject()
        ran += 1
        if judged.status == "violated":
            found = (before, judged)
            raise _Violated

    test = settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        derandomize=True,
        phases=(Phase.explicit, Phase.generate, Phase.shrink),
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
        verbosity=Verbosity.quiet,
        print_blob=False,
    )(given(**drawn)(body))
    try:
        test()
    except _Violated:
        pass
    except Unsatisfiable:
        return {"status": "not_checked", "examples": ran, "detail": "no drawn input met the preconditions"}
    except HypothesisException as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return {"status": "not_checked", "examples": ran, "detail": f"Hypothesis: {type(exc).__name__}: {first}"}
    if found is None:
        return {"status": "passed", "examples": ran}
    before, judged = found
    inputs = {name: literal(value) for name, value in before.items()}
    unreadable = [name for name, text in inputs.items() if text is None]
    if unreadable:
        shown = ", ".join(f"{name}={safe_repr(before[name])}" for name in unreadable)
        detail = f"a violation whose inputs have no Python literal ({shown}): {judged.detail}"
        return {"status": "not_checked", "examples": ran, "detail": detail}
    return {"status": "refuted", "examples": ran, "inputs": inputs, "detail": judged.detail}
