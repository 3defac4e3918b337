"""Contract corpus, dict: the functions in BUGS break their contract on the witness input given there."""


def invert(d: dict[str, int]) -> dict[int, str]:
    """Values to keys (one key per value).

    post: all(d[v] == k for k, v in _.items())
    """
    return {v: k for k, v in d.items()}


def invert_bug(d: dict[str, int]) -> dict[int, str]:
    """Values to keys, claimed to lose nothing (it does with repeated values).

    post: len(_) == len(d)
    """
    return {v: k for k, v in d.items()}


def word_count(words: list[str]) -> dict[str, int]:
    """How often each word occurs.

    post: sum(_.values()) == len(words) and all(v > 0 for v in _.values())
    """
    counts: dict[str, int] = {}
    for word in words:
        counts[word] = counts.get(word, 0) + 1
    return counts


def merge_prefer_bug(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    """a and b merged, b winning (a wins instead).

    post: all(_[k] == v for k, v in b.items())
    """
    return {**b, **a}


def top_key(d: dict[str, int]) -> str:
    """A key with the largest value.

    pre: len(d) > 0
    post: d[_] == max(d.values())
    """
    return max(d, key=lambda k: d[k])


def histogram_bug(xs: list[int]) -> dict[int, int]:
    """How often each value occurs (skips zeros).

    post: sum(_.values()) == len(xs)
    """
    counts: dict[int, int] = {}
    for x in xs:
        if x:
            counts[x] = counts.get(x, 0) + 1
    return counts


def filter_positive(d: dict[str, int]) -> dict[str, int]:
    """The entries with a positive value.

    post: all(v > 0 for v in _.values()) and all(d[k] == v for k, v in _.items())
    """
    return {k: v for k, v in d.items() if v > 0}


def total_bug(d: dict[str, int]) -> int:
    """The sum of the values, except with a planted key.

    post: _ == sum(d.values())
    """
    if "admin" in d:
        return 0
    return sum(d.values())


BUGS = {
    "invert_bug": {"d": {"a": 0, "b": 0}},
    "merge_prefer_bug": {"a": {"": 0}, "b": {"": 1}},
    "histogram_bug": {"xs": [0]},
    "total_bug": {"d": {"admin": 1}},
}
