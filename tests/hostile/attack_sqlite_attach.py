"""sqlite: ATTACH a database outside the sandbox (a new one, and the project's), VACUUM INTO outside."""

import sqlite3

from _bait import CANARY_DIR, PROJECT_DB, report


def attach(path, statement):
    db = sqlite3.connect(":memory:")
    db.execute(f"ATTACH DATABASE '{path}' AS other")
    db.execute(statement)
    db.commit()
    return "written"


def attack():
    """Write databases outside.

    >>> attack()
    'report'
    """
    return report(
        ("attach new", lambda: attach(f"{CANARY_DIR}/new.db", "CREATE TABLE other.t(x)")),
        ("attach project", lambda: attach(PROJECT_DB, "INSERT INTO other.t VALUES ('escaped')")),
        ("drop in project", lambda: attach(PROJECT_DB, "DROP TABLE other.t")),
        ("vacuum into", lambda: sqlite3.connect(":memory:").execute(f"VACUUM INTO '{CANARY_DIR}/vacuum.db'")),
    )
