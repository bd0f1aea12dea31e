"""Named locks in the warehouse's own database, for the writes that must not run twice at once
(publishing one period, migrating the schema).

Why the database and not a file: the tasks that race run on different workers. PostgreSQL's
advisory lock belongs to the transaction (released with it); MariaDB's GET_LOCK to the session
(released by `release`); SQLite serialises writers itself and needs none.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

#: how long a MariaDB session waits for a lock before giving up (PostgreSQL waits for the holder)
TIMEOUT_S = 300


def take(conn: Connection, key: str, timeout_s: int = TIMEOUT_S) -> bool:
    """Take the lock named `key` in the connection's transaction; False when MariaDB gave up waiting."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": key})
    elif dialect in ("mysql", "mariadb"):
        return conn.execute(text("SELECT GET_LOCK(:key, :timeout)"), {"key": key, "timeout": timeout_s}).scalar() == 1
    return True


def release(conn: Connection, key: str) -> None:
    """Release a MariaDB lock (GET_LOCK outlives the transaction; the other engines' do not)."""
    if conn.dialect.name in ("mysql", "mariadb"):
        conn.execute(text("SELECT RELEASE_LOCK(:key)"), {"key": key})
