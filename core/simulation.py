"""Shared by the simulated payment provider and carrier."""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
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
            with transaction.atomic():
                SimulatorCall.objects.create(service=service, key=key, attempts=1)
            return 1
        except IntegrityError:  # a concurrent first call got there first
            calls.update(attempts=F("attempts") + 1)
    return calls.values_list("attempts", flat=True).get()


@contextmanager
def simulated_call(*, service: str, key: str, slow: bool, in_use: type[RequestInFlight]) -> Iterator[None]:
    """Process one call of a simulated remote service under its idempotency key.

    While the call runs, its key is "in flight": a concurrent call with the same key gets
    ``in_use`` raised, as a real provider answers "key in use". A ``slow`` call takes
    ``SIMULATED_SLOW_SECONDS``, longer than any lease the saga sets; any call takes
    ``SIMULATED_LATENCY_SECONDS``, as a call over the network would. Each call is a span
    (``call payments.charge``...), as a real provider's HTTP client would trace it.
    """
    with (
        operation(f"call {service}", provider=service, idempotency_key=key),
        _in_flight(service=service, key=key, in_use=in_use),
    ):
        time.sleep(settings.SIMULATED_SLOW_SECONDS if slow else settings.SIMULATED_LATENCY_SECONDS)
        yield


@contextmanager
def _in_flight(*, service: str, key: str, in_use: type[RequestInFlight]) -> Iterator[None]:
    now = timezone.now()
    gives_up = settings.SIMULATED_SLOW_SECONDS + 5
    with transaction.atomic():
        taken_over = SimulatorInFlight.objects.filter(service=service, key=key, until__lt=now).update(
            until=now + timedelta(seconds=gives_up)
        )
        if not taken_over:
            try:
                with transaction.atomic():
                    SimulatorInFlight.objects.create(service=service, key=key, until=now + timedelta(seconds=gives_up))
            except IntegrityError:
                raise in_use(f"a request with idempotency key {key} is still in flight") from None
    try:
        yield
    finally:
        SimulatorInFlight.objects.filter(service=service, key=key).delete()


def simulated_in_flight(*, service: str, key: str) -> bool:
    return SimulatorInFlight.objects.filter(service=service, key=key, until__gte=timezone.now()).exists()
