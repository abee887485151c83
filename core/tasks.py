"""Housekeeping tasks that beat runs every hour (``CELERY_BEAT_SCHEDULE``)."""

from celery import shared_task

from core import services


@shared_task(name="core.purge_idempotency_records")
def purge_idempotency_records() -> int:
    return services.idempotency_records_purge()


@shared_task(name="core.clear_expired_sessions")
def clear_expired_sessions() -> None:
    services.sessions_clear_expired()


@shared_task(name="core.heartbeat")
def heartbeat(queue: str) -> None:
    """Beat sends one to every queue (``CELERY_BEAT_SCHEDULE``); whichever worker consumes it
    proves the queue is served. It waits behind the queue's backlog like any task, so a queue
    whose workers are alive but hopelessly behind goes stale too, as it should for readiness."""
    services.heartbeat_record(name=f"queue:{queue}")
