"""Fork bombs: os.fork, libc's fork() and _posixsubprocess.fork_exec in loops (bounded, should they ever get through),
and a thousand threads."""

import os
import threading
import time

from _bait import SLEEPER, fork_exec, libc_call, report


def fork_loop(fork):
    """A hundred children that stay (a child does not fork on: bounded, were the sandbox broken)."""
    result = None
    for _ in range(100):
        result = fork()
        if result in (0, "fork -> 0"):
            time.sleep(1000)
            os._exit(0)
    return result


def threads():
    started = []
    for _ in range(1000):
        thread = threading.Thread(target=time.sleep, args=(1000,), daemon=True)
        thread.start()
        started.append(thread)
    return len(started)


def attack():
    """Start hundreds of processes.

    >>> attack()
    'report'
    """
    return report(
        ("os.fork", lambda: fork_loop(os.fork)),
        ("fork_exec", lambda: [fork_exec(SLEEPER) for _ in range(100)]),
        ("libc fork", lambda: fork_loop(lambda: libc_call("fork"))),
        ("threads", threads),
    )
