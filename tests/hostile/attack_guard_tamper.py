"""Switching the audit hook's checks off from user code: its closure cells through gc, the worker's globals
through sys.modules['__main__'], os.path.realpath monkeypatched, frame locals; then writing, starting, connecting."""

import gc
import os
import socket
import sys

from _bait import BAIT, CANARY, PROJECT_CANARY, SLEEPER, report


def tamper():
    done = []
    for obj in gc.get_objects():
        if callable(obj) and getattr(obj, "__name__", "") in ("hook", "inside") and obj.__closure__:
            for cell in obj.__closure__:
                if isinstance(cell.cell_contents, str):
                    cell.cell_contents = "/"  # the "sandbox directory" becomes the whole filesystem
                    done.append(obj.__name__)
    worker = sys.modules["__main__"]
    for name in ("_REFUSED", "_PATH_EVENTS"):
        getattr(worker, name, {}).clear()
        done.append(name)
    os.path.realpath = lambda path, *args, **kwargs: "/sandbox/x"
    frame = sys._getframe()
    while frame is not None:
        if "home" in frame.f_locals:
            frame.f_locals["home"] = "/"
            done.append("frame")
        frame = frame.f_back
    return done


def attack():
    """Turn the guard off, then escape.

    >>> attack()
    'report'
    """
    return report(
        ("tamper", tamper),
        ("write project", lambda: open(PROJECT_CANARY, "w").write("escaped")),
        ("write canary", lambda: open(CANARY, "w").write("escaped")),
        ("process", lambda: __import__("subprocess").Popen(SLEEPER).pid),
        ("connect", lambda: socket.create_connection(("127.0.0.1", BAIT["port"]), timeout=1)),
    )
