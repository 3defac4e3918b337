"""Network: TCP to a listener on the machine's loopback, through socket, _socket and libc; UDP; DNS."""

import ctypes
import socket
import struct

from _bait import BAIT, libc, libc_call, report

PORT = BAIT["port"]


def libc_connect():
    fd = libc.socket(socket.AF_INET, socket.SOCK_STREAM, 0)
    address = struct.pack("=HH4s8x", socket.AF_INET, socket.htons(PORT), socket.inet_aton("127.0.0.1"))
    return f"socket -> {fd}; " + libc_call("connect", fd, ctypes.c_char_p(address), len(address))


def attack():
    """Reach the listener.

    >>> attack()
    'report'
    """
    return report(
        ("create_connection", lambda: socket.create_connection(("127.0.0.1", PORT), timeout=1)),
        (
            "_socket",
            lambda: __import__("_socket").socket(socket.AF_INET, socket.SOCK_STREAM).connect(("127.0.0.1", PORT)),
        ),
        ("libc connect", libc_connect),
        ("udp", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("127.0.0.1", PORT))),
        ("dns", lambda: socket.getaddrinfo("example.com", 80)),
    )
