"""Reads of the outbox for other apps (``/readyz``)."""

from datetime import datetime

from django.db.models import Min
from django.utils import timezone

from outbox.models import OutboxMessage


def outbox_oldest_due_at() -> datetime | None:
    """Since when the oldest message that is due and not yet published has waited (None when
    none waits): one read of the partial index of unsent rows (``outbox_due``)."""
    due = OutboxMessage.objects.filter(sent_at__isnull=True, parked_at__isnull=True, available_at__lte=timezone.now())
    oldest: datetime | None = due.aggregate(oldest=Min("available_at"))["oldest"]
    return oldest
