"""A kept connection's health check (``core.connections``): no round trip while the server is
silent, Django's ``SELECT 1`` (and a new connection) once the server has ended it."""

import os
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, connections

from core.connections import quiet_connections_trusted

ROOT = Path(__file__).resolve().parents[2]

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


WIRING = """
import django

django.setup()
from django.core.signals import request_started
from django.db import close_old_connections

from config.celery import close_old_database_connections
from core.connections import quiet_connections_trusted

receivers = request_started._live_receivers(None)[0]
assert receivers.index(close_old_connections) < receivers.index(quiet_connections_trusted), receivers
assert "quiet_connections_trusted" in close_old_database_connections.__code__.co_names
"""


def test_every_request_and_every_task_skip_the_round_trip():
    """In a process as a web server or a worker starts it: each request runs the receiver after
    Django's ``close_old_connections`` (which asks for the check), and each task's prerun calls it.
    A fresh process, as in this one the test client moves ``close_old_connections`` to the end of
    the receivers and Sentry's integration wraps each of them."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    result = subprocess.run(
        [sys.executable, "-c", WIRING], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
