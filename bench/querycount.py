"""Counts every SQL statement the shop's processes send, by verb, when ``BENCH_COUNT_QUERIES``
names a folder: each process (gunicorn's, the worker's main process and its pool) keeps its
counts in memory and writes them to ``<folder>/<pid>.json`` at most every quarter second.

PostgreSQL here has no ``pg_stat_statements``; ``pg_stat_database`` counts commits and rows but
not statements. Only the benchmark's counting run turns this on: the timed runs are untouched.
"""

import json
import os
import threading
from collections import Counter
from pathlib import Path
from typing import Any

_counts: Counter[str] = Counter()
_dirty = threading.Event()
_flusher_pid = 0


def _flush_forever(folder: Path) -> None:
    path = folder / f"{os.getpid()}.json"
    writing = path.with_suffix(".tmp")
    while True:
        _dirty.wait()
        _dirty.clear()
        # Whole or not at all: a reader (``totals``) never finds the file half written.
        writing.write_text(json.dumps(dict(_counts)))
        os.replace(writing, path)
        threading.Event().wait(0.25)


def _count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
    _counted(sql.lstrip().split(" ", 1)[0].upper())
    return execute(sql, params, many, context)


def _counted(verb: str) -> None:
    from celery import current_task

    global _flusher_pid
    if _flusher_pid != os.getpid():  # first statement of this process (a pool child forks)
        _flusher_pid = os.getpid()
        _counts.clear()
        folder = Path(os.environ["BENCH_COUNT_QUERIES"])
        threading.Thread(target=_flush_forever, args=(folder,), daemon=True).start()
    task = current_task.name if current_task else "(no task: relay thread, web)"
    _counts[verb] += 1
    _counts[f"{task} | {verb}"] += 1
    _dirty.set()


def install() -> None:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.backends.signals import connection_created

    commit = BaseDatabaseWrapper._commit  # type: ignore[attr-defined]

    def counted_commit(self: Any) -> Any:  # commits do not pass the execute wrappers
        if self.connection is not None:
            _counted("COMMIT")
        return commit(self)

    BaseDatabaseWrapper._commit = counted_commit  # type: ignore[attr-defined]

    def on_connect(connection: Any, **_: Any) -> None:
        if _count not in connection.execute_wrappers:
            connection.execute_wrappers.append(_count)

    connection_created.connect(on_connect, weak=False)


def totals(folder: Path) -> Counter[str]:
    """Statements by verb (and ``"<task> | <verb>"``), over every process that wrote counts."""
    total: Counter[str] = Counter()
    for path in folder.glob("*.json"):
        total.update(json.loads(path.read_text()))
    return total
