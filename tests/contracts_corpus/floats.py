"""Contract corpus, float (bugs that show only under IEEE rounding among them): the functions in BUGS break their
contract on the witness input given there."""

import math


def mean2_bug(a: float, b: float) -> float:
    """The mean of two numbers (overflows for large ones).

    pre: math.isfinite(a) and math.isfinite(b)
    post: min(a, b) <= _ <= max(a, b)
    """
    return (a + b) / 2


def mean2(a: float, b: float) -> float:
    """The mean of two numbers, kept between them.

    pre: math.isfinite(a) and math.isfinite(b)
    post: min(a, b) <= _ <= max(a, b)
    """
    middle = a / 2 + b / 2
    return min(max(middle, min(a, b)), max(a, b))


def add_sub_bug(x: float, y: float) -> float:
    """x, after adding and taking away y (rounding loses x).

    pre: math.isfinite(x) and math.isfinite(y)
    post: _ == x
    """
    return (x + y) - y


def lerp_bug(a: float, b: float, t: float) -> float:
    """The point at t between a and b (rounding can leave the interval).

    pre: abs(a) <= 1e300 and abs(b) <= 1e300 and 0.0 <= t <= 1.0
    post: min(a, b) <= _ <= max(a, b)
    """
    return a + (b - a) * t


def trunc_floor_bug(x: float) -> int:
    """The floor of x (truncates instead, wrong below zero).

    pre: math.isfinite(x)
    post: _ <= x < _ + 1
    """
    return int(x)


def relu(x: float) -> float:
    """x when positive, else zero.

    pre: not math.isnan(x)
    post: _ >= 0 and (_ == x or _ == 0.0)
    """
    return x if x > 0 else 0.0


def clamp01(x: float) -> float:
    """x held to [0, 1].

    pre: not math.isnan(x)
    post: 0.0 <= _ <= 1.0
    """
    return min(1.0, max(0.0, x))


def sqrt_nonneg(x: float) -> float:
    """The square root.

    pre: x >= 0
    post: _ >= 0 and (_ == 0) == (x == 0)
    """
    return math.sqrt(x)


def hypot_ok(x: float, y: float) -> float:
    """The length of (x, y).

    pre: math.isfinite(x) and math.isfinite(y)
    post: _ >= max(abs(x), abs(y))
    """
    return math.hypot(x, y)


BUGS = {
    "mean2_bug": {"a": 1e308, "b": 1e308},
    "add_sub_bug": {"x": 1.0, "y": 1e16},
    "lerp_bug": {"a": 8.040403167000736, "b": 0.0007248915526508557, "t": 1.0},
    "trunc_floor_bug": {"x": -0.5},
}
