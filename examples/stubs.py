"""Stubs with specs: lift-lsp's "Generate from spec" turns each into code."""


def running_max(values: list[int]) -> list[int]:
    """Return the running maximum of a list of integers.

    Args:
        values: the integers, in order.

    Returns:
        A list of the same length whose i-th item is max(values[: i + 1]).

    >>> running_max([1, 3, 2, 5, 4])
    [1, 3, 3, 5, 5]
    >>> running_max([])
    []
    """
    ...


def clamp(x: int, lo: int, hi: int) -> int:
    """Clamp x into the closed interval [lo, hi].

    pre: lo <= hi
    post: lo <= __return__ <= hi

    clamp(5, 0, 3) => 3
    clamp(-2, 0, 3) => 0
    """
    raise NotImplementedError


# spec: Count the vowels (a, e, i, o, u, either case) in a string.
#   count_vowels("Hello") == 2
#   count_vowels("xyz") == 0
def count_vowels(text: str) -> int:
    pass


def parse_port(value):
    """Parse a TCP port number from text.

    Raises:
        ValueError: if the text is not an integer between 1 and 65535.

    >>> parse_port("8080")
    8080
    >>> parse_port("0")
    Traceback (most recent call last):
    ValueError: port out of range
    """
