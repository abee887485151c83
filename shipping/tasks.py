"""The shipping service's commands from the orchestrator (queue ``shipping``)."""

from typing import Any

from celery import Task, shared_task

from sagas.hops import CanvasHops
from shipping import steps

SERVICE = "shipping"


@shared_task(bind=True, name="shipping.create_shipment")
def create_shipment(self: Task[Any, Any], order_id: str, context: dict[str, Any]) -> None:
    steps.ship(order_id=order_id, context=context, hops=CanvasHops.take(self, shard=order_id, service=SERVICE))


@shared_task(bind=True, name="shipping.cancel_shipment", max_retries=None)
def cancel_shipment(self: Task[Any, Any], order_id: str) -> None:
    steps.cancel(order_id=order_id, hops=CanvasHops.take(self, shard=order_id, service=SERVICE))
