"""A module the example writes into the sandbox's directory and then imports: its import-time code calls libc."""

import importlib
import os
import sys

from _bait import CANARY, PROJECT_CANARY, report

EVIL = f"""
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
RESULTS = [
    f"unlink -> {{libc.unlink({PROJECT_CANARY!r}.encode())}} ({{os.strerror(ctypes.get_errno())}})",
    f"creat -> {{libc.creat({CANARY!r}.encode(), 0o666)}} ({{os.strerror(ctypes.get_errno())}})",
    f"fork -> {{libc.fork()}} ({{os.strerror(ctypes.get_errno())}})",
]
"""


def load():
    with open("evil_written.py", "w") as f:
        f.write(EVIL)
    sys.path.insert(0, os.getcwd())
    return importlib.import_module("evil_written").RESULTS


def attack():
    """Import code it wrote.

    >>> attack()
    'report'
    """
    return report(("import written module", load))
