"""The server's resident memory over a long session.

glibc's allocator raises its threshold for serving large blocks from their own mappings each time such a block is
freed, and keeps freed memory for reuse; a server's resident memory then climbs in steps of several MiB with its
largest transient jobs (a full check, a document's first analysis) although nothing leaks (bench/soak.py measured
steps of 2 to 12 MiB over 800 cycles, while tracemalloc showed Python's own allocations flat). Fixing the threshold
gives every block of `LARGE_BLOCK_BYTES` or more its own mapping, returned to the system when freed, and trimming
after each background job returns the rest. Elsewhere than on glibc both do nothing.
"""

from __future__ import annotations

import ctypes
import platform
from typing import Any

LARGE_BLOCK_BYTES = 128 * 1024
_M_MMAP_THRESHOLD = -3
"""`mallopt`'s parameter number for the threshold (glibc's malloc.h)."""


def _glibc() -> Any | None:
    return ctypes.CDLL(None) if platform.libc_ver()[0] == "glibc" else None


_LIBC = _glibc()


def keep_large_blocks_apart() -> None:
    """Serve every block of `LARGE_BLOCK_BYTES` or more from its own mapping from now on (call once, at start)."""
    if _LIBC is not None:
        _LIBC.mallopt(_M_MMAP_THRESHOLD, LARGE_BLOCK_BYTES)


def release_freed() -> None:
    """Give the memory freed so far back to the system (after a background job)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
