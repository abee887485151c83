"""One event handler task per service queue: ``<service>.handle_event`` runs on ``<service>``."""

from datetime import timedelta
from typing import Any

from celery import shared_task
from django.conf import settings

from events import services
from outbox import nearby


def _handle_event(consumer: str, message: dict[str, Any], attempt: int = 0) -> None:
    services.event_handle(consumer=consumer, message=message, attempt=attempt)


handle_event = {service: shared_task(name=f"{service}.handle_event")(_handle_event) for service in settings.SHOP_QUEUES}

# A worker that runs its own hops hands the events waiting for one bookkeeping handler over
# together (``outbox.nearby``): one transaction for an order's moves instead of one each.
for _service in settings.SHOP_QUEUES:
    nearby.run_together(f"{_service}.handle_event", services.events_handle_together)


@shared_task(name="orders.events_redeliver_unhandled")
def redeliver_unhandled() -> int:
    """Beat: events a broker lost before their handler ran are published again."""
    return services.events_redeliver_unhandled(
        after=timedelta(seconds=settings.EVENTS_REDELIVER_AFTER_SECONDS), within=timedelta(hours=6)
    )
