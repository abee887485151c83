"""Housekeeping tasks that beat runs every hour (``CELERY_BEAT_SCHEDULE``)."""

from celery import shared_task

from core import services


@shared_task(name="core.purge_idempotency_records")
def purge_idempotency_records() -> int:
    return services.idempotency_records_purge()


@shared_task(name="core.clear_expired_sessions")
def clear_expired_sessions() -> None:
    services.sessions_clear_expired()
