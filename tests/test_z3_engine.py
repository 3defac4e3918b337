"""Tests for lift_lsp.check.contracts.z3_engine: z3 proofs and counterexamples, each one replayed in Python."""

from __future__ import annotations

import ast
import textwrap
import time
from typing import Any

import pytest

from lift_lsp.check.contracts.z3_engine import SmtVerdict, check_postconditions


def _function(source: str) -> Any:
    code = textwrap.dedent(source)
    try:
        tree = ast.parse(code)
    except SyntaxError:  # a method whose docstring is less indented than the def
        code = "if 1:\n" + source
        tree = ast.parse(code)
    name = next(n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef))
    namespace: dict[str, Any] = {}
    exec(code, namespace)
    fn = namespace[name]
    return fn.__func__ if isinstance(fn, staticmethod) else fn


def assert_real_counterexample(source: str, pres: list[str], verdict: SmtVerdict) -> Any:
    """Run the function on the counterexample: preconditions hold, the result matches, the post is false."""
    assert verdict.status == "counterexample", verdict
    args = {k: ast.literal_eval(v) for k, v in verdict.counterexample.items()}
    for pre in pres:
        assert eval(pre, {}, dict(args)), (pre, args)
    result = _function(source)(**args)
    assert verdict.result is not None
    assert result == ast.literal_eval(verdict.result), (result, verdict)
    if verdict.result == "None":
        assert result is None
    else:
        assert not eval(verdict.condition, {}, {**args, "result": result}), (verdict.condition, args, result)
    return result


def check(source: str, pres: list[str], posts: list[str], **kw: Any) -> list[SmtVerdict]:
    verdicts = check_postconditions(source, pres, posts, **kw)
    assert [v.condition for v in verdicts] == posts
    return verdicts


# ----------------------------------------------------------------------------------------------- counterexamples

BAD_ABS = """
def my_abs(x: int) -> int:
    \"\"\"Absolute value (wrong: the sign test is reversed).\"\"\"
    return -x if x > 0 else x
"""

SWAPPED_CLAMP = """
def clamp(x: int, lo: int, hi: int) -> int:
    return min(lo, max(x, hi))
"""

REMAINDER = """
def rem(x: int, y: int) -> int:
    if y == 0:
        raise ValueError("y must not be 0")
    return x % y
"""

SUM_BELOW = """
def sum_to(n: int) -> int:
    total = 0
    for i in range(n):
        total += i
    return total
"""

TRUNC_DIV = """
def trunc_div(x: int, y: int) -> int:
    q = abs(x) // abs(y)
    return q if (x < 0) == (y < 0) else -q
"""


def test_wrong_abs_counterexample_is_real() -> None:
    (v,) = check(BAD_ABS, [], ["result >= 0"])
    assert_real_counterexample(BAD_ABS, [], v)
    assert int(v.counterexample["x"]) != 0
    assert "result >= 0" in v.message and "x=" in v.message


def test_clamp_with_swapped_bounds_counterexample() -> None:
    pres = ["lo <= hi"]
    v, in_bounds = check(SWAPPED_CLAMP, pres, ["not (lo <= x <= hi) or result == x", "lo <= result <= hi"])
    assert_real_counterexample(SWAPPED_CLAMP, pres, v)
    assert in_bounds.status == "proved"  # it always returns lo: in bounds, but wrong


def test_modulo_sign_fails_for_negative_divisor() -> None:
    v, identity = check(REMAINDER, [], ["0 <= result < abs(y)", "x == (x // y) * y + result"])
    assert_real_counterexample(REMAINDER, [], v)
    assert int(v.counterexample["y"]) < 0  # Python's % takes the sign of the divisor
    assert identity.status == "proved"  # y == 0 raises: that path does not return


def test_off_by_one_loop_sum() -> None:
    pres = ["0 <= n <= 10"]
    (v,) = check(SUM_BELOW, pres, ["result == n * (n + 1) // 2"])
    assert_real_counterexample(SUM_BELOW, pres, v)


def test_truncating_division_is_not_floor_division() -> None:
    pres = ["y != 0"]
    (v,) = check(TRUNC_DIV, pres, ["result == x // y"])
    x, y = (int(v.counterexample[k]) for k in ("x", "y"))
    assert_real_counterexample(TRUNC_DIV, pres, v)
    assert (x < 0) != (y < 0) and x % y != 0


def test_falling_off_the_end_returns_none() -> None:
    src = "def pos(x: int) -> int:\n    if x > 0:\n        return 1\n"
    (v,) = check(src, [], ["result == 1"])
    assert v.result == "None"
    assert_real_counterexample(src, [], v)
    assert int(v.counterexample["x"]) <= 0


def test_counterexample_within_unroll_bound_of_unbounded_loop() -> None:
    # n is unbounded, but a violation found in the unrolled paths is still real
    (v,) = check(SUM_BELOW, ["n >= 0"], ["result >= n"])
    assert_real_counterexample(SUM_BELOW, ["n >= 0"], v)


def test_bool_arithmetic_counterexample() -> None:
    src = "def f(a: bool, b: bool) -> int:\n    return a + 2 * b\n"
    in_range, not_three = check(src, [], ["0 <= result <= 3", "result != 3"])
    assert in_range.status == "proved"
    assert not_three.counterexample == {"a": "True", "b": "True"}
    assert_real_counterexample(src, [], not_three)


def test_while_break_continue_counterexample() -> None:
    src = """
def f(n: int) -> int:
    s = 0
    i = 0
    while i < n:
        i += 1
        if i == 3:
            continue
        if i > 6:
            break
        s += i
    return s
"""
    pres = ["0 <= n <= 10"]
    nonneg, not_eighteen = check(src, pres, ["result >= 0", "result != 18"])
    assert nonneg.status == "proved"
    assert_real_counterexample(src, pres, not_eighteen)  # 1+2+4+5+6 for n >= 6


# ----------------------------------------------------------------------------------------------- proofs


def test_max2_is_at_least_both() -> None:
    src = "def max2(a: int, b: int) -> int:\n    if a >= b:\n        return a\n    return b\n"
    verdicts = check(src, [], ["result >= a and result >= b", "result == a or result == b", "result == max(a, b)"])
    assert [v.status for v in verdicts] == ["proved"] * 3


def test_correct_abs_is_proved() -> None:
    src = "def my_abs(x: int) -> int:\n    if x < 0:\n        x = -x\n    return x\n"
    verdicts = check(src, [], ["result >= 0", "result == abs(x)", "result == x or result == -x"])
    assert [v.status for v in verdicts] == ["proved"] * 3


def test_clamp_within_bounds_under_precondition() -> None:
    src = "def clamp(x: int, lo: int, hi: int) -> int:\n    return max(lo, min(x, hi))\n"
    (v,) = check(src, ["lo <= hi"], ["lo <= result <= hi"])
    assert v.status == "proved"
    (w,) = check(src, [], ["lo <= result <= hi"])  # without it: lo > hi breaks it
    assert_real_counterexample(src, [], w)


def test_bounded_loop_sum_is_proved() -> None:
    (v,) = check(SUM_BELOW, ["0 <= n <= 10"], ["2 * result == n * (n - 1)"])
    assert v.status == "proved"


def test_floor_division_implemented_by_hand_is_proved() -> None:
    src = """
def floordiv(x: int, y: int) -> int:
    q = abs(x) // abs(y)
    if (x < 0) != (y < 0):
        q = -q if q * abs(y) == abs(x) else -q - 1
    return q
"""
    (v, r) = check(src, ["y != 0"], ["result == x // y", "x - result * y == x % y"])
    assert v.status == "proved" and r.status == "proved"


def test_for_else_and_method_source() -> None:
    src = '''
    @staticmethod
    def is_prime(n: int) -> bool:
        """True for primes.
(a docstring line less indented than the def)"""
        for d in range(2, n):
            if n % d == 0:
                break
        else:
            return n >= 2
        return False
'''
    pres = ["0 <= n <= 12"]
    odd, no_nine = check(src, pres, ["not result or n % 2 == 1 or n == 2", "result != (n == 9)"])
    assert odd.status == "proved"
    assert_real_counterexample(src, pres, no_nine)


def test_tuple_assignment_and_assert() -> None:
    src = """
def fib(n: int) -> int:
    assert n >= 0
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a
"""
    ok, wrong = check(src, ["n <= 8"], ["result >= n - 1", "result != 21"])
    assert ok.status == "proved"  # n < 0 fails the assert: such inputs never return
    assert_real_counterexample(src, ["n <= 8"], wrong)


# ----------------------------------------------------------------------------------------------- Python semantics


@pytest.mark.parametrize(("x", "y"), [(7, 2), (-7, 2), (7, -2), (-7, -2), (6, -3), (-1, 5), (0, -5)])
@pytest.mark.parametrize("op", ["//", "%"])
def test_floor_division_matches_python(x: int, y: int, op: str) -> None:
    src = f"def f(x: int, y: int) -> int:\n    return x {op} y\n"
    expected = eval(f"{x} {op} {y}")
    pres = [f"x == {x}", f"y == {y}"]
    same, differs = check(src, pres, [f"result == {expected}", f"result != {expected}"])
    assert same.status == "proved"
    assert differs.result == str(expected)
    assert_real_counterexample(src, pres, differs)


def test_division_by_zero_path_does_not_return() -> None:
    src = "def f(x: int, y: int) -> int:\n    return x // y\n"
    (v,) = check(src, ["y == 0"], ["result == 12345"])
    assert v.status == "proved" and "vacuously" in v.message


def test_short_circuit_guards_division() -> None:
    src = "def f(x: int, y: int) -> bool:\n    return y != 0 and x // y > 1\n"
    (v,) = check(src, [], ["result == (y != 0 and x >= 2 * y) or y < 0"])
    assert v.status == "proved"


# ----------------------------------------------------------------------------------------------- unknown / unsupported


def test_unbounded_loop_is_unknown() -> None:
    (v,) = check(SUM_BELOW, ["n >= 0"], ["2 * result == n * (n - 1)"], unroll=4)
    assert v.status == "unknown" and "loop" in v.message


@pytest.mark.parametrize(
    "src",
    [
        "def f(s: str) -> int:\n    return len(s)\n",
        "def f(x: int) -> int:\n    return [x, 1][0]\n",
        "def f(x: int) -> int:\n    return helper(x)\n",
        "def f(x: float) -> int:\n    return 1\n",
        "def f(x) -> int:\n    return x\n",
        "def f(x: int) -> int:\n    return x / 2\n",
        "def f(x: int) -> int:\n    return x + LIMIT\n",
        "def f(x: int) -> str:\n    return 'a'\n",
    ],
)
def test_outside_the_fragment_is_unsupported(src: str) -> None:
    (v,) = check(src, [], ["result == 1"])
    assert v.status == "unsupported" and v.message.startswith("unsupported")


def test_unsupported_condition_only_affects_itself() -> None:
    src = "def f(x: int) -> int:\n    return x + 1\n"
    bad, good = check(src, [], ["len(str(result)) > 0", "result > x"])
    assert bad.status == "unsupported" and good.status == "proved"


def test_unsupported_precondition_keeps_proofs_but_not_counterexamples() -> None:
    src = "def f(x: int) -> int:\n    return x + 1\n"
    proof, cex = check(src, ["is_small(x)"], ["result > x", "result > 5"])
    assert proof.status == "proved"
    assert cex.status == "unsupported" and "is_small" in cex.message


def test_hard_query_stops_at_the_time_limit() -> None:
    src = "def gcd(a: int, b: int) -> int:\n    while b != 0:\n        a, b = b, a % b\n    return a\n"
    start = time.monotonic()
    verdicts = check(src, ["0 <= a <= 20", "0 <= b <= 20"], ["result >= 0", "a == 0 or result <= a"], timeout_ms=300)
    assert time.monotonic() - start < 30  # z3 alone ignores its limit here for minutes
    assert all(v.status in ("proved", "unknown") for v in verdicts)


def test_constant_powers_are_folded() -> None:
    """`2**31` in the code and in a precondition is a constant, not an unsupported power."""
    src = "def fits(x: int) -> bool:\n    return -(2**31) <= x < 2**31\n"
    (proved,) = check(src, ["0 <= x < 2**31"], ["result"])
    assert proved.status == "proved", proved
    (found,) = check(src.replace("-(2**31) <=", "-(2**31) <"), [], ["result == (-(2**31) <= x < 2**31)"])
    assert found.status == "counterexample" and found.counterexample == {"x": str(-(2**31))}
    (large,) = check("def f(x: int) -> int:\n    return x ** 40\n", [], ["result >= 0"])
    assert large.status == "unsupported"
