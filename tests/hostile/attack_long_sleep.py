"""An example that sleeps for an hour."""

import time


def attack():
    """Sleep.

    >>> attack()
    'report'
    """
    time.sleep(3600)
