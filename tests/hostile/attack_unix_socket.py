"""An AF_UNIX socket on disk (a listener in the project folder): directly, from a child, through libc."""

import ctypes
import socket
import struct

from _bait import BAIT, fork_exec, libc, libc_call, report

PATH = BAIT["unix_socket"]
CHILD = [
    __import__("sys").executable,
    "-c",
    f"import socket; socket.socket(socket.AF_UNIX).connect({PATH!r})",
    BAIT["marker"],
]


def libc_connect():
    fd = libc.socket(socket.AF_UNIX, socket.SOCK_STREAM, 0)
    address = struct.pack("=H108s", socket.AF_UNIX, PATH.encode())
    return f"socket -> {fd}; " + libc_call("connect", fd, ctypes.c_char_p(address), len(address))


def attack():
    """Reach the listener on disk.

    >>> attack()
    'report'
    """
    return report(
        ("connect", lambda: socket.socket(socket.AF_UNIX).connect(PATH)),
        ("from a child", lambda: fork_exec(CHILD)),
        ("libc connect", libc_connect),
    )
