"""Memory bombs: one huge allocation, then a list that grows without end."""

import contextlib


def grow():
    items = []
    while True:
        items.append(bytearray(64 << 20))


def attack():
    """Take all the memory.

    >>> attack()
    'report'
    """
    with contextlib.suppress(MemoryError):
        bytearray(1 << 40)
    grow()
