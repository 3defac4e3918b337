"""os.system and libc's system(): a shell that writes the canaries."""

from _bait import CANARY, PROJECT_CANARY, libc_call, report


def attack():
    """Run a shell.

    >>> attack()
    'report'
    """
    command = f"echo escaped > {CANARY}; echo escaped > {PROJECT_CANARY}"
    return report(
        ("os.system", lambda: __import__("os").system(command)),
        ("libc system", lambda: libc_call("system", command.encode())),
    )
