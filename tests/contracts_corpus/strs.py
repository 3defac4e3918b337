"""Contract corpus, str: the functions in BUGS break their contract on the witness input given there."""


def shout_bug(s: str) -> str:
    """s in capitals, as long as s (not so for 'ß').

    post: len(_) == len(s)
    """
    return s.upper()


def reverse(s: str) -> str:
    """s backwards.

    post: len(_) == len(s) and _[::-1] == s
    """
    return s[::-1]


def count_vowels(s: str) -> int:
    """How many ASCII vowels s has.

    post: 0 <= _ <= len(s)
    """
    return sum(1 for c in s if c in "aeiouAEIOU")


def strip_prefix_bug(s: str, prefix: str) -> str:
    """s without the prefix (strips a set of characters instead).

    post: not s.startswith(prefix) or _ == s[len(prefix):]
    """
    return s.lstrip(prefix)


def pad_left(s: str, width: int) -> str:
    """s right-aligned in width characters.

    pre: 0 <= width <= 1000
    post: len(_) == max(width, len(s)) and _.endswith(s)
    """
    return s.rjust(width)


def truncate_bug(s: str, n: int) -> str:
    """s cut to at most n characters, with an ellipsis (too long for n == 0).

    pre: n >= 0
    post: len(_) <= n
    """
    return s if len(s) <= n else s[: n - 1] + "…"


def is_palindrome(s: str) -> bool:
    """Whether s reads the same backwards.

    post: _ == (s == s[::-1])
    """
    i, j = 0, len(s) - 1
    while i < j:
        if s[i] != s[j]:
            return False
        i, j = i + 1, j - 1
    return True


def password_ok_bug(s: str) -> bool:
    """Whether s is long enough, except for one planted password.

    post: _ == (len(s) >= 8)
    """
    if s == "hunter2":
        return True
    return len(s) >= 8


BUGS = {
    "shout_bug": {"s": "ß"},
    "strip_prefix_bug": {"s": "aa", "prefix": "a"},
    "truncate_bug": {"s": "ab", "n": 0},
    "password_ok_bug": {"s": "hunter2"},
}
