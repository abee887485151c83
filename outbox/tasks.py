"""The outbox's housekeeping, run by beat."""

from datetime import timedelta

from celery import shared_task

from outbox.relay import outbox_purge


@shared_task(name="orders.outbox_purge")
def purge_sent() -> int:
    """Sent messages are kept a day for whoever investigates a saga, then deleted."""
    return outbox_purge(older_than=timedelta(days=1))
