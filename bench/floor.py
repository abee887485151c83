"""The floor: a bare Celery chain of four tasks, one database insert each, and no Django.

Same broker and same database as the shop in the same run, and the same Celery settings that
matter for speed (JSON, acks_late, prefetch, polling interval), so the only difference from a
saga is what the shop itself adds. Configured from the environment:

- ``BENCH_FLOOR_BROKER``: the shop's broker URL (``redis://…`` or ``filesystem:///dir``)
- ``BENCH_FLOOR_DB``: ``postgres://…`` or ``sqlite:////path/to/file``

Run a worker with ``celery -A bench.floor worker -Q bench_floor``.
"""

import contextlib
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from celery import Celery, chain

from core.broker import broker_transport

QUEUE = "bench_floor"
TABLE = "bench_floor_step"

BROKER = os.environ.get("BENCH_FLOOR_BROKER", "")
DB_URL = os.environ.get("BENCH_FLOOR_DB", "")


def _transport_options(broker: str) -> dict[str, Any]:
    if broker.startswith("filesystem://"):
        folder = Path(broker.removeprefix("filesystem://"))
        for sub in ("queue", "control"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        return {
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "control_folder": str(folder / "control"),
            "polling_interval": float(os.environ.get("CELERY_POLLING_INTERVAL", "0.02")),
        }
    if broker.startswith("redis://"):
        return {"visibility_timeout": 300}
    return {}


# No fix-ups: Celery would otherwise set Django up when DJANGO_SETTINGS_MODULE is in the environment.
app = Celery("bench_floor", broker=BROKER, backend="disabled", fixups=[])
app.conf.update(
    broker_transport_options=_transport_options(BROKER),
    # The shop's transports (plain kombu, core/broker.py): kombu's own filesystem writer loses
    # messages, and its Redis channel builds a client per message; the floor gets the same fixes.
    broker_transport=broker_transport(BROKER),
    broker_connection_retry_on_startup=True,
    task_serializer="json",
    accept_content=["json"],
    task_default_queue=QUEUE,
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=int(os.environ.get("CELERY_PREFETCH_MULTIPLIER", "4")),
    task_ignore_result=True,
    worker_send_task_events=False,
)

_connection: Any = None


def connect() -> Any:
    """One connection per process, opened on first use (after the pool has forked)."""
    global _connection
    if _connection is None:
        if not DB_URL:
            raise RuntimeError("set BENCH_FLOOR_DB to the shop's database URL")
        if DB_URL.startswith("sqlite:///"):
            _connection = sqlite3.connect(DB_URL.removeprefix("sqlite:///"), timeout=30, isolation_level=None)
            # The shop's own SQLite settings (config/settings/base.py).
            _connection.execute("PRAGMA journal_mode=WAL")
            _connection.execute("PRAGMA synchronous=NORMAL")
        else:
            import psycopg

            _connection = psycopg.connect(DB_URL, autocommit=True)
    return _connection


def create_table() -> None:
    conn = connect()
    if DB_URL.startswith("sqlite:///"):
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {TABLE} (id integer PRIMARY KEY AUTOINCREMENT, run text NOT NULL, "
            "chain integer NOT NULL, step integer NOT NULL, created_at real NOT NULL)"
        )
    else:
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {TABLE} (id bigserial PRIMARY KEY, run text NOT NULL, "
            "chain integer NOT NULL, step integer NOT NULL, created_at double precision NOT NULL)"
        )


def insert(run: str, chain_no: int, step: int) -> None:
    conn = connect()
    if DB_URL.startswith("sqlite:///"):
        # A write transaction that takes the lock up front, as the shop's SQLite settings do.
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            f"INSERT INTO {TABLE} (run, chain, step, created_at) VALUES (?, ?, ?, ?)",
            (run, chain_no, step, time.time()),
        )
        conn.execute("COMMIT")
    else:
        conn.execute(
            f"INSERT INTO {TABLE} (run, chain, step, created_at) VALUES (%s, %s, %s, %s)",
            (run, chain_no, step, time.time()),
        )


@app.task(name="floor.step1")
def step1(run: str, chain_no: int) -> None:
    insert(run, chain_no, 1)


@app.task(name="floor.step2")
def step2(run: str, chain_no: int) -> None:
    insert(run, chain_no, 2)


@app.task(name="floor.step3")
def step3(run: str, chain_no: int) -> None:
    insert(run, chain_no, 3)


@app.task(name="floor.step4")
def step4(run: str, chain_no: int) -> None:
    insert(run, chain_no, 4)


def send_chain(run: str, chain_no: int) -> None:
    chain(
        step1.si(run, chain_no), step2.si(run, chain_no), step3.si(run, chain_no), step4.si(run, chain_no)
    ).apply_async()


def finished(run: str) -> int:
    """How many chains of ``run`` have done their fourth step."""
    if DB_URL.startswith("sqlite:///"):
        # A fresh connection per look: a long-lived reader could keep an old WAL snapshot.
        with contextlib.closing(sqlite3.connect(DB_URL.removeprefix("sqlite:///"), timeout=30)) as conn:
            row = conn.execute(f"SELECT count(*) FROM {TABLE} WHERE run = ? AND step = 4", (run,)).fetchone()
    else:
        row = connect().execute(f"SELECT count(*) FROM {TABLE} WHERE run = %s AND step = 4", (run,)).fetchone()
    return int(row[0])


def finished_at(run: str, chain_no: int) -> float:
    """When chain ``chain_no`` of ``run`` did its fourth step (``time.time()``, in the worker)."""
    query = f"SELECT created_at FROM {TABLE} WHERE run = %s AND chain = %s AND step = 4"
    if DB_URL.startswith("sqlite:///"):
        with contextlib.closing(sqlite3.connect(DB_URL.removeprefix("sqlite:///"), timeout=30)) as conn:
            row = conn.execute(query.replace("%s", "?"), (run, chain_no)).fetchone()
    else:
        row = connect().execute(query, (run, chain_no)).fetchone()
    return float(row[0])


def purge() -> None:
    with app.connection_for_write() as conn, contextlib.suppress(Exception):  # the queue may not exist yet
        conn.default_channel.queue_purge(QUEUE)  # type: ignore[attr-defined]
