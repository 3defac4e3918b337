"""Symbolic and hard links from the sandbox's own directory to files outside it, written through."""

import os

from _bait import CANARY, PROJECT_CANARY, report


def through(target, name):
    os.symlink(target, name)
    with open(name, "w") as f:
        return f.write("escaped")


def via_root_link():
    os.symlink("/", "root")
    with open("root" + PROJECT_CANARY, "w") as f:
        return f.write("escaped")


def attack():
    """Write through links.

    >>> attack()
    'report'
    """
    return report(
        ("symlink to project", lambda: through(PROJECT_CANARY, "link1")),
        ("symlink to canary", lambda: through(CANARY, "link2")),
        ("symlink to /", via_root_link),
        ("hard link", lambda: os.link(PROJECT_CANARY, "hard")),
    )
