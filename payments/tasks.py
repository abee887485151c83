"""The payment service's commands from the orchestrator (queue ``payments``)."""

from typing import Any

from celery import Task, shared_task

from payments import steps
from sagas.hops import CanvasHops

SERVICE = "payments"


@shared_task(bind=True, name="payments.charge_payment")
def charge_payment(self: Task[Any, Any], order_id: str, context: dict[str, Any]) -> None:
    steps.charge(order_id=order_id, context=context, hops=CanvasHops.take(self, shard=order_id, service=SERVICE))


@shared_task(bind=True, name="payments.refund_payment")
def refund_payment(self: Task[Any, Any], order_id: str) -> None:
    steps.refund(order_id=order_id, hops=CanvasHops.take(self, shard=order_id, service=SERVICE))
