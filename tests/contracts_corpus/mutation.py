"""Contract corpus, in-place mutation (`post[...]`, `__old__`): the functions in BUGS break their contract on the
witness input given there."""


def sort_in_place(xs: list[int]) -> None:
    """Sort xs.

    post[xs]: xs == sorted(__old__.xs)
    """
    xs.sort()


def append_twice_bug(xs: list[int], x: int) -> None:
    """Append x once (appends it twice).

    post[xs]: xs == __old__.xs + [x]
    """
    xs.append(x)
    xs.append(x)


def remove_all(xs: list[int], x: int) -> None:
    """Remove every x from xs.

    post[xs]: x not in xs and all(y in __old__.xs for y in xs)
    """
    xs[:] = [y for y in xs if y != x]


def remove_first_bug(xs: list[int], x: int) -> None:
    """Remove x from xs (removes only its first occurrence).

    post[xs]: x not in xs
    """
    if x in xs:
        xs.remove(x)


def total_sorts_bug(xs: list[int]) -> int:
    """The sum of xs, changing nothing (it sorts xs).

    post[]: _ == sum(xs)
    """
    xs.sort()
    return sum(xs)


def move(src: list[int], dst: list[int]) -> None:
    """Move every item of src to the end of dst.

    post[src, dst]: not src and dst == __old__.dst + __old__.src
    """
    dst.extend(src)
    src.clear()


def move_bug(src: list[int], dst: list[int]) -> None:
    """Move every item of src to the end of dst (copies them).

    post[src, dst]: not src and dst == __old__.dst + __old__.src
    """
    dst.extend(src)


def increment_all(d: dict[str, int]) -> None:
    """Add one to every value.

    post[d]: d.keys() == __old__.d.keys() and all(d[k] == __old__.d[k] + 1 for k in d)
    """
    for key in d:
        d[key] += 1


def dedupe_in_place_bug(xs: list[int]) -> None:
    """Drop repeated items from xs (skips items after a deletion).

    post[xs]: len(xs) == len(set(__old__.xs))
    """
    seen = set()
    for i, x in enumerate(xs):
        if x in seen:
            del xs[i]
        seen.add(x)


BUGS = {
    "append_twice_bug": {"xs": [], "x": 0},
    "remove_first_bug": {"xs": [0, 0], "x": 0},
    "total_sorts_bug": {"xs": [1, 0]},
    "move_bug": {"src": [0], "dst": []},
    "dedupe_in_place_bug": {"xs": [0, 0, 0]},
}
