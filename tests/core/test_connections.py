"""A kept connection's health check (``core.connections``): no round trip while the server is
silent, Django's ``SELECT 1`` (and a new connection) once the server has ended it."""

import select
import time
from typing import Any

import pytest
from django.core.signals import request_started
from django.db import connection, connections

from core.connections import quiet_connections_trusted

pytestmark = [
    pytest.mark.django_db(transaction=True),  # outside a transaction, as a request or a task starts
    pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite's health check is no query"),
]


@pytest.fixture
def checks_counted(monkeypatch):
    """How often Django asks the server whether the connection is usable (``SELECT 1``)."""
    asked: list[bool] = []
    usable = connection.is_usable

    def counted() -> bool:
        asked.append(usable())
        return asked[-1]

    monkeypatch.setattr(connection, "is_usable", counted)
    return asked


def kept_and_due_for_a_check() -> int:
    """A connection kept from an earlier request, as ``close_old_connections`` leaves it."""
    db: Any = connection  # django-stubs does not declare the health-check attributes
    db.ensure_connection()
    db.health_check_enabled = True
    db.health_check_done = True
    pid = backend_pid()
    db.health_check_done = False
    return pid


def backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
        return int(pid)


def test_a_silent_connection_is_used_without_a_round_trip(checks_counted):
    pid = kept_and_due_for_a_check()

    quiet_connections_trusted()

    assert backend_pid() == pid
    assert checks_counted == []


def test_a_connection_the_server_ended_is_checked_and_replaced(checks_counted):
    pid = kept_and_due_for_a_check()
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    finally:
        other.close()
    deadline = time.monotonic() + 5  # the server's goodbye reaches the socket
    while not select.select([connection.connection.fileno()], [], [], 0.05)[0]:
        assert time.monotonic() < deadline, "the server's message never arrived"

    quiet_connections_trusted()

    assert backend_pid() != pid  # no OperationalError: Django checked, closed and connected again
    assert checks_counted == [False]


def test_every_request_and_every_task_skip_the_round_trip():
    from config.celery import close_old_database_connections

    sync_receivers, _ = request_started._live_receivers(None)
    assert quiet_connections_trusted in sync_receivers
    assert "quiet_connections_trusted" in close_old_database_connections.__code__.co_names
