"""Contract corpus, int: PEP 316 contracts; the functions in BUGS break theirs, on the witness input given there."""

import math


def abs_diff(a: int, b: int) -> int:
    """The distance between a and b.

    post: _ >= 0 and (_ == a - b or _ == b - a)
    """
    return a - b if a >= b else b - a


def abs_diff_bug(a: int, b: int) -> int:
    """The distance between a and b.

    post: _ >= 0 and (_ == a - b or _ == b - a)
    """
    return abs(a) - abs(b) if a >= b else b - a


def midpoint(lo: int, hi: int) -> int:
    """The middle of [lo, hi], rounded down.

    pre: lo <= hi
    post: lo <= _ <= hi
    """
    return lo + (hi - lo) // 2


def isqrt_floor(n: int) -> int:
    """The integer square root.

    pre: n >= 0
    post: _ * _ <= n < (_ + 1) * (_ + 1)
    """
    return math.isqrt(n)


def isqrt_float_bug(n: int) -> int:
    """The integer square root, through a float (wrong for large n).

    pre: n >= 0
    post: _ * _ <= n < (_ + 1) * (_ + 1)
    """
    return int(n**0.5)


def digit_sum(n: int) -> int:
    """The sum of the decimal digits of n.

    pre: n >= 0
    post: _ >= 0 and (_ == 0) == (n == 0)
    """
    total = 0
    while n:
        total += n % 10
        n //= 10
    return total


def safe_abs_bug(x: int) -> int:
    """The absolute value, except for one planted input.

    post: _ >= 0
    """
    if x == 104729:
        return -x
    return x if x >= 0 else -x


def fits_int32_bug(x: int) -> bool:
    """Whether x fits a signed 32-bit integer (off by one at the bottom).

    post: _ == (-(2**31) <= x < 2**31)
    """
    return -(2**31) < x < 2**31


def round_up_bug(x: int, m: int) -> int:
    """The smallest multiple of m not below x (off by one).

    pre: m > 0
    post: _ >= x and _ % m == 0
    """
    return (x + m - 2) // m * m


BUGS = {
    "abs_diff_bug": {"a": 0, "b": -1},
    "isqrt_float_bug": {"n": 4503599761588224},
    "safe_abs_bug": {"x": 104729},
    "fits_int32_bug": {"x": -2147483648},
    "round_up_bug": {"x": 1, "m": 1},
}
