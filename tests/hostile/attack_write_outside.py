"""Writing, removing and renaming outside the sandbox's directory."""

import os
import pathlib
import shutil

from _bait import CANARY, CANARY_DIR, PROJECT_CANARY, report


def attack():
    """Change the canaries.

    >>> attack()
    'report'
    """
    return report(
        ("open canary", lambda: open(CANARY, "w").write("escaped")),
        ("open project", lambda: open(PROJECT_CANARY, "a").write("escaped")),
        ("os.open project", lambda: os.open(PROJECT_CANARY, os.O_WRONLY | os.O_TRUNC)),
        ("remove project", lambda: os.remove(PROJECT_CANARY)),
        ("rename project", lambda: os.rename(PROJECT_CANARY, PROJECT_CANARY + ".moved")),
        ("new file in project", lambda: pathlib.Path(PROJECT_CANARY).with_name("new.txt").write_text("escaped")),
        ("rmtree canaries", lambda: shutil.rmtree(CANARY_DIR)),
    )
