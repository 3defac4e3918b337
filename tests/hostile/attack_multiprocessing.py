"""multiprocessing: spawn, forkserver and fork contexts; a child that writes beside the canary and stays."""

import multiprocessing
import time

from _bait import CANARY_DIR, report


def child():
    with open(f"{CANARY_DIR}/from_multiprocessing.txt", "w") as f:
        f.write("escaped")
    time.sleep(1000)


def start(method):
    process = multiprocessing.get_context(method).Process(target=child, daemon=False)
    process.start()
    return process.pid


def attack():
    """Start worker processes.

    >>> attack()
    'report'
    """
    return report(*((method, lambda method=method: start(method)) for method in ("spawn", "forkserver", "fork")))
