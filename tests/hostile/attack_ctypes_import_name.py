"""ctypes from code compiled under an import-machinery file name (the old guard let ctypes run during imports)."""

from _bait import report

CODE = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.open(PROJECT_CANARY.encode(), os.O_WRONLY | os.O_TRUNC)
results = [f"open -> {fd} ({os.strerror(ctypes.get_errno())})"]
results.append(f"unlink -> {libc.unlink(PROJECT_CANARY.encode())} ({os.strerror(ctypes.get_errno())})")
results.append(f"system -> {libc.system(b'touch ' + CANARY.encode())}")
"""


def attack():
    """Call libc from "import machinery".

    >>> attack()
    'report'
    """
    from _bait import CANARY, PROJECT_CANARY

    def run():
        scope = {"PROJECT_CANARY": PROJECT_CANARY, "CANARY": CANARY}
        exec(compile(CODE, "<frozen importlib._bootstrap>", "exec"), scope)
        return scope["results"]

    return report(("ctypes as importlib", run))
