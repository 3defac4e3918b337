"""Changing a project file through a file descriptor: chmod, chown, utime, truncate, xattr."""

import os

from _bait import PROJECT_CANARY, report


def on_fd(action):
    fd = os.open(PROJECT_CANARY, os.O_RDONLY)
    try:
        return action(fd)
    finally:
        os.close(fd)


def attack():
    """Change the project canary's metadata.

    >>> attack()
    'report'
    """
    return report(
        ("chmod", lambda: on_fd(lambda fd: os.chmod(fd, 0o777))),
        ("fchmod", lambda: on_fd(lambda fd: os.fchmod(fd, 0o600))),
        ("chown", lambda: on_fd(lambda fd: os.chown(fd, 12345, 12345))),
        ("utime", lambda: on_fd(lambda fd: os.utime(fd, (0, 0)))),
        ("truncate", lambda: on_fd(lambda fd: os.truncate(fd, 0))),
        ("setxattr", lambda: on_fd(lambda fd: os.setxattr(fd, "user.escaped", b"1"))),
    )
