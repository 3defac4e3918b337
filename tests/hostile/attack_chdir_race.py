"""A thread switching the working directory between the sandbox's and the project's while the main thread opens a
relative path for writing (the old guard checked the path, then the kernel resolved it against another folder)."""

import os
import threading

from _bait import HERE, report


def race():
    home, project = os.getcwd(), str(HERE)
    stop = threading.Event()

    def flip():
        while not stop.is_set():
            os.chdir(project)
            os.chdir(home)

    thread = threading.Thread(target=flip)
    thread.start()
    written = 0
    try:
        for _ in range(3000):
            try:
                with open("project_canary.txt", "w") as f:
                    written += f.write("escaped") > 0
            except OSError:
                pass
    finally:
        stop.set()
        thread.join()
        os.chdir(home)
    return f"writes that succeeded: {written} (each in the sandbox's own folder or refused)"


def attack():
    """Race the path check.

    >>> attack()
    'report'
    """
    return report(("race", race))
