"""Processes started with _posixsubprocess.fork_exec (no audit event), as multiprocessing does."""

import multiprocessing.util
import os

from _bait import SLEEPER, fork_exec, report


def attack():
    """Start processes the audit hook does not see.

    >>> attack()
    'report'
    """
    return report(
        ("fork_exec", lambda: fork_exec(SLEEPER)),
        ("spawnv_passfds", lambda: multiprocessing.util.spawnv_passfds(os.fsencode(SLEEPER[0]), SLEEPER, ())),
    )
