"""One event handler task per service queue: ``<service>.handle_event`` runs on ``<service>``."""

from datetime import timedelta
from typing import Any

from celery import shared_task
from django.conf import settings

from events import services


def _handle_event(consumer: str, message: dict[str, Any], attempt: int = 0) -> None:
    services.event_handle(consumer=consumer, message=message, attempt=attempt)


handle_event = {service: shared_task(name=f"{service}.handle_event")(_handle_event) for service in settings.SHOP_QUEUES}


@shared_task(name="orders.events_redeliver_unhandled")
def redeliver_unhandled() -> int:
    """Beat: events a broker lost before their handler ran are published again."""
    return services.events_redeliver_unhandled(
        after=timedelta(seconds=settings.EVENTS_REDELIVER_AFTER_SECONDS), within=timedelta(hours=6)
    )
