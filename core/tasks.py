"""Housekeeping tasks that beat runs every hour (``CELERY_BEAT_SCHEDULE``)."""

from collections.abc import Collection

from celery import current_app, shared_task
from django.conf import settings

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


def heartbeats_send(queues: Collection[str] | None = None, *, expires: float | None = None) -> None:
    """Send the queues' heartbeats (every queue's by default) as beat sends them, from their
    entries in ``CELERY_BEAT_SCHEDULE``, where no beat runs: the tests and the benchmark's
    recovery. ``expires`` replaces the entries' expiry (``HEALTH_WORKER_STALE_SECONDS``)."""
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        if entry["task"] == heartbeat.name and (queues is None or entry["args"][0] in queues):
            options = entry["options"] if expires is None else entry["options"] | {"expires": expires}
            current_app.send_task(heartbeat.name, args=entry["args"], **options)
