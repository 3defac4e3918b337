"""Writes, unlinks, renames and new folders through a dir_fd of the project's folder and of the canaries'."""

import os

from _bait import CANARY_DIR, HERE, report


def at(folder, action):
    directory = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        return action(directory)
    finally:
        os.close(directory)


def attack():
    """Change files through a directory descriptor.

    >>> attack()
    'report'
    """
    project = str(HERE)
    return report(
        ("write", lambda: at(project, lambda d: os.open("project_canary.txt", os.O_WRONLY | os.O_TRUNC, dir_fd=d))),
        ("create", lambda: at(project, lambda d: os.open("new.txt", os.O_WRONLY | os.O_CREAT, 0o666, dir_fd=d))),
        ("unlink", lambda: at(project, lambda d: os.unlink("project_canary.txt", dir_fd=d))),
        (
            "rename",
            lambda: at(project, lambda d: os.rename("project_canary.txt", "moved.txt", src_dir_fd=d, dst_dir_fd=d)),
        ),
        ("mkdir", lambda: at(project, lambda d: os.mkdir("made", dir_fd=d))),
        ("canaries", lambda: at(CANARY_DIR, lambda d: os.unlink("canary.txt", dir_fd=d))),
    )
