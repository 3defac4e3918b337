"""/dev/shm: a file there, and POSIX shared memory (shm_open)."""

import os

from _bait import MARKER, report


def attack():
    """Write shared memory.

    >>> attack()
    'report'
    """
    return report(
        ("open", lambda: open(f"/dev/shm/{MARKER}", "w").write("escaped")),
        ("os.open", lambda: os.open(f"/dev/shm/{MARKER}.2", os.O_CREAT | os.O_WRONLY)),
        (
            "shared_memory",
            lambda: __import__("multiprocessing.shared_memory").shared_memory.SharedMemory(MARKER, True, 4096),
        ),
    )
