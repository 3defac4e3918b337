"""Signalling the server: pidfd_open + pidfd_send_signal, kill(), libc's kill(). The signal is SIGURG, which a
process ignores unless it asks for it: were the sandbox broken, the report would say it was sent (and the test fail)
without the test run itself being killed."""

import os
import signal

from _bait import libc_call, report, victims


def pidfd_kill(pid):
    fd = os.pidfd_open(pid)
    signal.pidfd_send_signal(fd, signal.SIGURG)
    return fd


def attack():
    """Signal the processes outside.

    >>> attack()
    'report'
    """
    attempts = []
    for pid in victims():
        attempts += [
            (f"pidfd {pid}", lambda pid=pid: pidfd_kill(pid)),
            (f"kill {pid}", lambda pid=pid: os.kill(pid, signal.SIGURG)),
            (f"libc kill {pid}", lambda pid=pid: libc_call("kill", pid, signal.SIGURG)),
        ]
    return report(*attempts)
