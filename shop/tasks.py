"""The inventory service's commands from the orchestrator (queue ``inventory``)."""

from typing import Any

from celery import Task, shared_task

from sagas.hops import CanvasHops
from shop import steps

SERVICE = "inventory"


# Its result is kept: the reservation chord counts its finished lines in the result backend.
@shared_task(bind=True, name="inventory.reserve_stock", ignore_result=False)
def reserve_stock(self: Task[Any, Any], order_id: str, context: dict[str, Any]) -> None:
    """One line of the order (``context["lines"]`` holds it alone): the lines run in parallel."""
    steps.reserve_lines(order_id=order_id, context=context, hops=CanvasHops.take(self, shard=order_id, service=SERVICE))


@shared_task(bind=True, name="inventory.release_stock", max_retries=None)
def release_stock(self: Task[Any, Any], order_id: str) -> None:
    steps.release(order_id=order_id, hops=CanvasHops.take(self, shard=order_id, service=SERVICE))
