"""Forty children in sessions of their own (setsid), left running when the example returns."""

from _bait import SLEEPER, fork_exec, libc_call, report


def setsid_fork():
    result = libc_call("fork")
    if result == "fork -> 0":
        __import__("os").setsid()
        __import__("time").sleep(1000)
        __import__("os")._exit(0)
    return result


def attack():
    """Leave processes behind.

    >>> attack()
    'report'
    """
    return report(
        *((f"setsid child {i}", lambda: fork_exec(SLEEPER, setsid=True)) for i in range(40)),
        ("libc fork + setsid", setsid_fork),
    )
