"""Implemented functions checked against their own specs (`lift-lsp check examples/checked.py`)."""


def mean(values: list[float]) -> float:
    """Arithmetic mean.

    >>> mean([1.0, 2.0, 3.0])
    2.0
    >>> mean([2, 4])
    3.0
    """
    return sum(values) / len(values)


def absolute(x: int) -> int:
    """The absolute value of x.

    post: __return__ >= 0

    >>> absolute(-4)
    4
    """
    if x > 0:
        return x
    return x if x == 0 else -x - 0


def wrong_abs(x: int) -> int:
    """The absolute value of x (this implementation forgets negative numbers).

    post: __return__ >= 0

    >>> wrong_abs(3)
    3
    """
    return x


def slugify(title: str) -> str:
    """Lower-case words joined by dashes.

    :param title: the text to turn into a slug
    :param sep: the separator (documented, but the code has no such parameter)
    :returns: the slug

    >>> slugify("Hello World")
    'hello-world'
    >>> slugify("  Many   spaces ")
    'many-spaces-'
    """
    return "-".join(title.lower().split())
