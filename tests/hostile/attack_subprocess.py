"""subprocess: a child that writes beside the canary and stays."""

import subprocess

from _bait import SLEEPER, report


def attack():
    """Start processes.

    >>> attack()
    'report'
    """
    return report(
        ("run", lambda: subprocess.run(SLEEPER, timeout=1)),
        ("Popen", lambda: subprocess.Popen(SLEEPER).pid),
        ("Popen new session", lambda: subprocess.Popen(SLEEPER, start_new_session=True).pid),
    )
