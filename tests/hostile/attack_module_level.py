"""The module's own top-level code attacks as it is imported (on open, before any example): a process left behind,
the canaries written, the listener called."""

import socket

from _bait import BAIT, CANARY, PROJECT_CANARY, SLEEPER, fork_exec, report


def write(path):
    with open(path, "w") as f:
        return f.write("escaped")


AT_IMPORT = report(
    ("fork_exec", lambda: fork_exec(SLEEPER, setsid=True)),
    ("write canary", lambda: write(CANARY)),
    ("write project", lambda: write(PROJECT_CANARY)),
    ("connect", lambda: socket.create_connection(("127.0.0.1", BAIT["port"]), timeout=1)),
)


def attack():
    """What the import did.

    >>> attack()
    'report'
    """
    return AT_IMPORT
