"""One event handler task per service queue: ``<service>.handle_event`` runs on ``<service>``."""

from typing import Any

from celery import shared_task
from django.conf import settings

from events import services


def _handle_event(consumer: str, message: dict[str, Any], attempt: int = 0) -> None:
    services.event_handle(consumer=consumer, message=message, attempt=attempt)


handle_event = {service: shared_task(name=f"{service}.handle_event")(_handle_event) for service in settings.SHOP_QUEUES}
