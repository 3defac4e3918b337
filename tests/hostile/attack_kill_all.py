"""kill(-1) through libc: is there any process this one may signal? (Signal 0 only asks: were the sandbox broken, a
SIGKILL here would end every process of this user on the machine, or of all users as root.)"""

from _bait import libc_call


def attack():
    """Find processes to kill.

    >>> attack()
    'report'
    """
    return libc_call("kill", -1, 0)
