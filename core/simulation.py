"""Shared by the simulated payment provider and carrier."""

import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from core.models import SimulatorCall, SimulatorInFlight
from core.remote import RequestInFlight
from telemetry.context import operation


def simulator_attempt(*, service: str, key: str) -> int:
    """Count one more call to ``service`` for ``key`` and return its number (1 for the first).

    (Call it inside ``simulated_call``.)
    """
    calls = SimulatorCall.objects.filter(service=service, key=key)
    if not calls.update(attempts=F("attempts") + 1):
        try:
            with may_conflict():
                SimulatorCall.objects.create(service=service, key=key, attempts=1)
            return 1
        except IntegrityError:  # a concurrent first call got there first
            calls.update(attempts=F("attempts") + 1)
    return calls.values_list("attempts", flat=True).get()


def may_conflict() -> AbstractContextManager[object]:
    """Around one INSERT that may hit a unique key: a savepoint inside the caller's transaction,
    so that the ``IntegrityError`` leaves it usable; nothing outside one, where the statement
    is a transaction of its own and ``atomic`` would only add a ``BEGIN`` and a ``COMMIT``
    (a remote step calls its provider outside any transaction: on every charge and shipment)."""
    return transaction.atomic() if transaction.get_connection().in_atomic_block else nullcontext()


@contextmanager
def simulated_call(*, service: str, key: str, slow: bool, in_use: type[RequestInFlight]) -> Iterator[None]:
    """Process one call of a simulated remote service under its idempotency key.

    While the call runs, its key is "in flight": a concurrent call with the same key gets
    ``in_use`` raised, as a real provider answers "key in use". A ``slow`` call takes
    ``SIMULATED_SLOW_SECONDS``, longer than any lease the saga sets; any call takes
    ``SIMULATED_LATENCY_SECONDS``, as a call over the network would. Each call is a span
    (``call payments.charge``...), as a real provider's HTTP client would trace it.
    """
    _held_up_on_the_way(service=service, key=key)
    with (
        operation(f"call {service}", provider=service, idempotency_key=key),
        _in_flight(service=service, key=key, in_use=in_use),
    ):
        time.sleep(settings.SIMULATED_SLOW_SECONDS if slow else settings.SIMULATED_LATENCY_SECONDS)
        yield


def _held_up_on_the_way(*, service: str, key: str) -> None:
    """The fault ``SIMULATED_NETWORK_DELAY_SECONDS``: the first request for ``key`` reaches the
    service late. Nothing at the service knows of it meanwhile (its key is not in flight yet), so
    whoever asks finds nothing; then it lands, after its step may have been given up."""
    if not settings.SIMULATED_NETWORK_DELAY_SECONDS or service not in settings.SIMULATED_NETWORK_DELAY_SERVICES:
        return
    if simulator_attempt(service=f"{service} on the way", key=key) == 1:
        time.sleep(settings.SIMULATED_NETWORK_DELAY_SECONDS)


@contextmanager
def _in_flight(*, service: str, key: str, in_use: type[RequestInFlight]) -> Iterator[None]:
    if not _take_key(service=service, key=key):
        raise in_use(f"a request with idempotency key {key} is still in flight")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(LET_GO, [service, key])


# One statement each, where the ORM needs a transaction around an UPDATE, a savepoint and an
# INSERT, and a transaction around the DELETE: the simulators run on every charge and shipment,
# on the shop's database, inside its measured time.
TAKE_KEY = f"""
    INSERT INTO {SimulatorInFlight._meta.db_table} (service, key, until) VALUES (%s, %s, %s)
    ON CONFLICT (service, key) DO UPDATE SET until = excluded.until
    WHERE {SimulatorInFlight._meta.db_table}.until < %s
    RETURNING id"""
LET_GO = f"DELETE FROM {SimulatorInFlight._meta.db_table} WHERE service = %s AND key = %s"


def _take_key(*, service: str, key: str) -> bool:
    """Mark ``key`` in flight, unless a call still holds it; a call the service itself gave up
    on (past its ``until``) no longer does. Both PostgreSQL and SQLite (3.35+) speak this SQL."""
    ops = connection.ops
    now = timezone.now()
    until = now + timedelta(seconds=settings.SIMULATED_SLOW_SECONDS + 5)
    with connection.cursor() as cursor:
        cursor.execute(
            TAKE_KEY, [service, key, ops.adapt_datetimefield_value(until), ops.adapt_datetimefield_value(now)]
        )
        return cursor.fetchone() is not None


def simulated_lookup(
    rows: QuerySet[Any, tuple[Any, ...]], *, service: str, key: str, in_use: type[RequestInFlight]
) -> tuple[Any, ...] | None:
    """The first of ``rows`` (a ``values_list``) of a simulator's ledger, or ``None``; raises
    ``in_use`` while a call of ``service`` holds ``key`` and has recorded nothing yet.

    Both come from one statement, so from one snapshot: read one after the other, a call that
    records its row and lets go of its key between the two reads would be missed by both (a
    compensation would then settle a step that succeeded as never done).
    """
    inner, inner_params = rows[:1].query.sql_with_params()
    in_flight = SimulatorInFlight._meta.db_table
    sql = (
        f"SELECT found.*, EXISTS(SELECT 1 FROM {in_flight} WHERE service = %s AND key = %s AND until >= %s) "
        f"FROM (SELECT 1 AS one) AS base LEFT JOIN ({inner}) AS found ON 1 = 1"
    )
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(sql, [service, key, now, *inner_params])  # in the order they appear
        *found, held = cursor.fetchone()
    if found[0] is not None:
        return tuple(found)
    if held:
        raise in_use(f"a request with idempotency key {key} is still in flight")
    return None
