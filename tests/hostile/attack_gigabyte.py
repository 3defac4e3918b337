"""A gigabyte of files in the sandbox's own directory, one mebibyte each (each under the file-size limit)."""

from _bait import report


def fill():
    chunk = b"x" * (1 << 20)
    written = 0
    try:
        for i in range(1024):
            with open(f"fill-{i}.bin", "wb") as f:
                f.write(chunk)
            written += 1
    finally:
        print(f"{written} MiB written")
    return written


def attack():
    """Fill the disk.

    >>> attack()
    'report'
    """
    return report(("fill", fill))
