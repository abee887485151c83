"""A kept database connection is health-checked without a round trip while the server is silent.

``CONN_HEALTH_CHECKS`` makes Django send ``SELECT 1`` before the first query of every request
and every task that reuses a connection: a round trip (and a commit in the server's counters)
for each, which on the saga's path is one per message a worker takes from the broker.

A PostgreSQL server that ends a connection (a restart, ``pg_terminate_backend``, an idle
timeout) says so on the socket before closing it, so an idle connection's socket has something
to read exactly when the server has given up on it: nothing else arrives unasked on a
connection that does not ``LISTEN``. ``quiet_connections_trusted`` looks at the socket without
waiting and keeps Django's check only where something arrived. A connection lost without a word
(a network cut) fails both ways alike: ``SELECT 1`` would wait for the same TCP timeout as the
task's first query. Neither Django nor psycopg offers this (psycopg's pool checks with a
query too), hence these few lines.
"""

import select
from typing import Any, cast

from django.db import connections


def quiet_connections_trusted(**kwargs: Any) -> None:
    """After ``close_old_connections``: skip the pending health check of each kept PostgreSQL
    connection whose socket is silent. A connect signal receiver (``request_started``, Celery's
    ``task_prerun``)."""
    # Any: django-stubs does not declare the wrapper's health-check attributes.
    for conn in cast(list[Any], connections.all(initialized_only=True)):
        if conn.vendor != "postgresql" or conn.connection is None or conn.health_check_done:
            continue
        if not conn.health_check_enabled or conn.in_atomic_block or conn.connection.closed:
            continue  # a connection psycopg has closed is Django's to check and replace
        readable, _, _ = select.select([conn.connection.fileno()], [], [], 0)
        if not readable:
            conn.health_check_done = True
