"""Contract corpus, list: the functions in BUGS break their contract on the witness input given there."""


def max_index(xs: list[int]) -> int:
    """Where the largest item is.

    pre: len(xs) > 0
    post: 0 <= _ < len(xs) and xs[_] == max(xs)
    """
    best = 0
    for i, x in enumerate(xs):
        if x > xs[best]:
            best = i
    return best


def second_largest_bug(xs: list[int]) -> int:
    """The second largest distinct value (wrong with duplicates).

    pre: len(set(xs)) >= 2
    post: _ == sorted(set(xs))[-2]
    """
    return sorted(xs)[-2]


def dedupe(xs: list[int]) -> list[int]:
    """The distinct items, in order of first appearance.

    post: len(_) == len(set(xs)) and set(_) == set(xs)
    """
    seen: set[int] = set()
    out = []
    for x in xs:
        if x not in seen:
            seen.add(x)
            out.append(x)
    return out


def chunk_bug(xs: list[int], n: int) -> list[list[int]]:
    """xs in pieces of n (drops the last piece).

    pre: n > 0
    post: sum(len(c) for c in _) == len(xs)
    """
    return [xs[i : i + n] for i in range(0, len(xs) - n, n)]


def running_sum(xs: list[int]) -> list[int]:
    """The prefix sums of xs.

    post: len(_) == len(xs) and (not xs or _[-1] == sum(xs))
    """
    out = []
    total = 0
    for x in xs:
        total += x
        out.append(total)
    return out


def merge_bug(a: list[int], b: list[int]) -> list[int]:
    """Two sorted lists merged (forgets the rest of b).

    pre: a == sorted(a) and b == sorted(b)
    post: _ == sorted(a + b)
    """
    out = []
    i = j = 0
    while i < len(a) and j < len(b):
        if a[i] <= b[j]:
            out.append(a[i])
            i += 1
        else:
            out.append(b[j])
            j += 1
    return out + a[i:]


def binary_search(xs: list[int], target: int) -> int:
    """Where target is in the sorted xs, or -1.

    pre: xs == sorted(xs)
    post: (_ == -1 and target not in xs) or (0 <= _ < len(xs) and xs[_] == target)
    """
    lo, hi = 0, len(xs) - 1
    while lo <= hi:
        mid = (lo + hi) // 2
        if xs[mid] == target:
            return mid
        if xs[mid] < target:
            lo = mid + 1
        else:
            hi = mid - 1
    return -1


def rotate_bug(xs: list[int], k: int) -> list[int]:
    """xs rotated left by k (fails on an empty list).

    pre: k >= 0
    post: sorted(_) == sorted(xs)
    """
    k = k % len(xs)
    return xs[k:] + xs[:k]


BUGS = {
    "second_largest_bug": {"xs": [0, 1, 1]},
    "chunk_bug": {"xs": [0], "n": 1},
    "merge_bug": {"a": [], "b": [0]},
    "rotate_bug": {"xs": [], "k": 0},
}
