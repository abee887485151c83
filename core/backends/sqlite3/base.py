"""Django's SQLite backend, waiting for the write lock in short steps of its own.

The embedded default shares one SQLite file between the web, the worker and beat, and SQLite
lets one transaction write at a time: every atomic block begins with ``BEGIN IMMEDIATE``
(``config/settings/base.py``) and waits there while another process writes. SQLite's own wait
(``busy_timeout``) sleeps 1, 2, 5, 10, 15, 20, 25 ms and on, each try longer than the last, so a
web request that meets a busy worker can sleep tens of milliseconds after the lock is free, and
meet it taken again by a worker that asked later: with orders arriving at the sagas' rate, the
POST's p99 was 194 to 347 ms against a p50 of 13 to 14 ms, and 38 to 68 ms with the wait below
(bench/improvements.md, eighth round). Here a transaction asks again after 0.5 ms, then 1 ms, then
every 2 ms, until the same ``timeout``. So does every statement outside a transaction (such as the
simulated providers' one-statement writes): with SQLite's ever longer sleeps, such a write could be
kept waiting by transactions that ask every few milliseconds, long after the lock was first free.

Why not a package: Python's ``sqlite3`` module offers no busy handler of one's own, and the
drivers that do (APSW) are not what Django's backend runs on.
"""

import sqlite3
from collections.abc import Callable
from time import monotonic, sleep
from typing import Any, TypeVar

from django.db.backends.sqlite3 import base

FIRST_PAUSE_SECONDS = 0.0005
LONGEST_PAUSE_SECONDS = 0.002

T = TypeVar("T")


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        connection = super().get_new_connection(conn_params)
        self.lock_timeout = float(conn_params.get("timeout", 5.0))
        return connection

    def create_cursor(self, name: str | None = None) -> Any:
        cursor = self.connection.cursor(factory=PatientCursor)
        cursor.lock_timeout = self.lock_timeout
        return cursor


class PatientCursor(base.SQLiteCursorWrapper):
    """Outside a transaction, a statement (a ``BEGIN IMMEDIATE`` among them) that finds the
    database locked asks again in short steps; inside one, the write lock is the transaction's
    already. ``executemany`` keeps SQLite's wait: outside a transaction each of its rows is a
    transaction of its own, so it cannot simply be run again."""

    lock_timeout: float

    def execute(self, query: str, params: Any = None) -> Any:
        if self.connection.in_transaction:
            return super().execute(query, params)
        return self._patiently(lambda: base.SQLiteCursorWrapper.execute(self, query, params))

    def _patiently(self, statement: Callable[[], T]) -> T:
        connection = self.connection
        connection.execute("PRAGMA busy_timeout = 0")
        deadline, pause = monotonic() + self.lock_timeout, FIRST_PAUSE_SECONDS
        try:
            while True:
                try:
                    return statement()
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) or monotonic() >= deadline:
                        raise
                sleep(pause)
                pause = min(pause * 2, LONGEST_PAUSE_SECONDS)
        finally:
            connection.execute(f"PRAGMA busy_timeout = {int(self.lock_timeout * 1000)}")
