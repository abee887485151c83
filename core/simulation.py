"""Shared by the simulated payment provider and carrier."""

from django.db import transaction
from django.db.models import F

from core.models import SimulatorCall


def simulator_attempt(*, service: str, key: str) -> int:
    """Count one more call to ``service`` for ``key`` and return its number (1 for the first)."""
    with transaction.atomic():
        call, _ = SimulatorCall.objects.get_or_create(service=service, key=key)
        SimulatorCall.objects.filter(pk=call.pk).update(attempts=F("attempts") + 1)
        call.refresh_from_db(fields=["attempts"])
        return call.attempts
