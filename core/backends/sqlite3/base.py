"""Django's SQLite backend, waiting for the write lock in short steps of its own.

The embedded default shares one SQLite file between the web, the worker and beat, and SQLite
lets one transaction write at a time: every atomic block begins with ``BEGIN IMMEDIATE``
(``config/settings/base.py``) and waits there while another process writes. SQLite's own wait
(``busy_timeout``) sleeps 1, 2, 5, 10, 15, 20, 25 ms and on, each try longer than the last, so a
web request that meets a busy worker can sleep tens of milliseconds after the lock is free, and
meet it taken again by a worker that asked later: with orders arriving at the sagas' rate, the
POST's p99 was 194 to 347 ms against a p50 of 13 to 14 ms, and 38 to 68 ms with the wait below
(bench/improvements.md, eighth round). Here a transaction asks again after 0.5 ms, then 1 ms, then
every 2 ms, until the same ``timeout``; statements outside a transaction keep SQLite's wait.

Why not a package: Python's ``sqlite3`` module offers no busy handler of one's own, and the
drivers that do (APSW) are not what Django's backend runs on.
"""

import sqlite3
from time import monotonic, sleep
from typing import Any

from django.db import OperationalError
from django.db.backends.sqlite3 import base

FIRST_PAUSE_SECONDS = 0.0005
LONGEST_PAUSE_SECONDS = 0.002


class DatabaseWrapper(base.DatabaseWrapper):
    transaction_mode: str | None  # Django's, from OPTIONS

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        connection = super().get_new_connection(conn_params)
        self.lock_timeout = float(conn_params.get("timeout", 5.0))
        return connection

    def _start_transaction_under_autocommit(self) -> None:
        begin = "BEGIN" if self.transaction_mode is None else f"BEGIN {self.transaction_mode}"
        # The pragmas and the tries after the first go to the driver's connection: the caller's
        # statements (and a test's count of them) show one BEGIN, as with Django's backend, and
        # a try costs microseconds instead of Django's cursor and error wrapping.
        self.connection.execute("PRAGMA busy_timeout = 0")
        try:
            try:
                self.cursor().execute(begin)
                return
            except OperationalError as exc:
                if "locked" not in str(exc):
                    raise
            deadline, pause = monotonic() + self.lock_timeout, FIRST_PAUSE_SECONDS
            while True:
                sleep(pause)
                pause = min(pause * 2, LONGEST_PAUSE_SECONDS)
                try:
                    self.connection.execute(begin)
                    return
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) or monotonic() >= deadline:
                        raise OperationalError(*exc.args) from exc
        finally:
            self.connection.execute(f"PRAGMA busy_timeout = {int(self.lock_timeout * 1000)}")
