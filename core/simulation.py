"""Shared by the simulated payment provider and carrier."""

import time

from django.conf import settings
from django.db import transaction
from django.db.models import F

from core.models import SimulatorCall


def simulator_attempt(*, service: str, key: str) -> int:
    """Count one more call to ``service`` for ``key`` and return its number (1 for the first).

    Takes ``SIMULATED_LATENCY_SECONDS`` first, as a call over the network would.
    """
    if settings.SIMULATED_LATENCY_SECONDS:
        time.sleep(settings.SIMULATED_LATENCY_SECONDS)
    with transaction.atomic():
        call, _ = SimulatorCall.objects.get_or_create(service=service, key=key)
        SimulatorCall.objects.filter(pk=call.pk).update(attempts=F("attempts") + 1)
        call.refresh_from_db(fields=["attempts"])
        return call.attempts
