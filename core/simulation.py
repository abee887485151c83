"""Shared by the simulated payment provider and carrier."""

import time

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F

from core.models import SimulatorCall


def simulator_attempt(*, service: str, key: str) -> int:
    """Count one more call to ``service`` for ``key`` and return its number (1 for the first).

    Takes ``SIMULATED_LATENCY_SECONDS`` first, as a call over the network would.
    """
    if settings.SIMULATED_LATENCY_SECONDS:
        time.sleep(settings.SIMULATED_LATENCY_SECONDS)
    calls = SimulatorCall.objects.filter(service=service, key=key)
    if not calls.update(attempts=F("attempts") + 1):
        try:
            with transaction.atomic():
                SimulatorCall.objects.create(service=service, key=key, attempts=1)
            return 1
        except IntegrityError:  # a concurrent first call got there first
            calls.update(attempts=F("attempts") + 1)
    return calls.values_list("attempts", flat=True).get()
