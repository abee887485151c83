"""The embedded default's SQLite backend: a writer waits for the write lock in short steps."""

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import OperationalError, connection
from django.db.utils import ConnectionHandler

from core.backends.sqlite3 import base


def wrapper_for(path: Path, timeout: float) -> Any:
    handler = ConnectionHandler(
        {
            "default": {
                "ENGINE": "core.backends.sqlite3",
                "NAME": str(path),
                "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": timeout},
            }
        }
    )
    db = handler["default"]
    db.ensure_connection()
    return db


@pytest.fixture(autouse=True)
def own_files(django_db_blocker: Any) -> Any:
    """These tests open SQLite files of their own, not the test database."""
    with django_db_blocker.unblock():
        yield


def busy_timeout_ms(db: Any) -> int:
    return int(db.connection.execute("PRAGMA busy_timeout").fetchone()[0])


@pytest.fixture
def writer(tmp_path: Path) -> Any:
    """Another process's connection to the same file, holding the write lock."""
    path = tmp_path / "shared.sqlite3"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA journal_mode=WAL")
    holder.execute("CREATE TABLE parcel (id INTEGER PRIMARY KEY)")
    holder.execute("BEGIN IMMEDIATE")
    yield path, holder
    holder.close()


def pauses_until_it_lets_go(monkeypatch: Any, holder: sqlite3.Connection, *, after: int) -> list[float]:
    """Record the backend's pauses; the other writer lets go of the lock at the ``after``-th."""
    pauses: list[float] = []

    def pause(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) == after:
            holder.rollback()

    monkeypatch.setattr(base, "sleep", pause)
    return pauses


def test_a_transaction_asks_again_in_short_steps_until_the_lock_is_free(writer: Any, monkeypatch: Any) -> None:
    path, holder = writer
    db = wrapper_for(path, timeout=30)
    pauses = pauses_until_it_lets_go(monkeypatch, holder, after=5)
    db._start_transaction_under_autocommit()
    try:
        assert pauses == [0.0005, 0.001, 0.002, 0.002, 0.002]  # SQLite's own would reach 10 ms
        assert db.connection.in_transaction
        assert busy_timeout_ms(db) == 30_000  # SQLite's own wait is back for a COMMIT, say
    finally:
        db.connection.rollback()
        db.close()


def test_a_write_outside_a_transaction_asks_again_the_same_way(writer: Any, monkeypatch: Any) -> None:
    path, holder = writer
    db = wrapper_for(path, timeout=30)
    pauses = pauses_until_it_lets_go(monkeypatch, holder, after=3)
    try:
        with db.cursor() as cursor:
            cursor.execute("INSERT INTO parcel (id) VALUES (%s)", [7])
        assert pauses == [0.0005, 0.001, 0.002]
        assert db.connection.execute("SELECT id FROM parcel").fetchall() == [(7,)]
        assert busy_timeout_ms(db) == 30_000
    finally:
        db.close()


def test_it_gives_up_after_the_timeout_and_keeps_sqlites_wait(writer: Any) -> None:
    path, _ = writer
    db = wrapper_for(path, timeout=0.05)
    try:
        with pytest.raises(OperationalError, match="locked"):
            db._start_transaction_under_autocommit()
        assert not db.connection.in_transaction
        assert busy_timeout_ms(db) == 50
    finally:
        db.close()


def test_a_free_lock_is_taken_at_once(tmp_path: Path, monkeypatch: Any) -> None:
    db = wrapper_for(tmp_path / "alone.sqlite3", timeout=30)
    monkeypatch.setattr(base, "sleep", lambda seconds: pytest.fail("waited for a free lock"))
    db._start_transaction_under_autocommit()
    try:
        assert db.connection.in_transaction
    finally:
        db.connection.rollback()
        db.close()


@pytest.mark.skipif(connection.vendor != "sqlite", reason="the embedded default only")
def test_the_embedded_default_runs_on_it() -> None:
    assert settings.DATABASES["default"]["ENGINE"] == "core.backends.sqlite3"
