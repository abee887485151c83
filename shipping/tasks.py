"""The shipping service's saga tasks (queue ``shipping``)."""

from typing import Any

from celery import Task, shared_task

from orders.models import Reason
from orders.steps import CANCEL_SHIPMENT, CREATE_SHIPMENT, run_compensation, run_step
from shipping import services
from shipping.carriers import AddressRejected


@shared_task(bind=True, name="shipping.create_shipment")
def create_shipment(self: Task[Any, Any], order_id: str) -> None:
    run_step(
        self,
        order_id=order_id,
        step=CREATE_SHIPMENT,
        action=lambda order: services.shipment_create(order=order),
        undo=lambda order: services.shipment_cancel(order=order),
        permanent={AddressRejected: Reason.SHIPPING_FAILED},
    )


@shared_task(bind=True, name="shipping.cancel_shipment", max_retries=None)
def cancel_shipment(self: Task[Any, Any], order_id: str) -> None:
    run_compensation(
        self,
        order_id=order_id,
        compensation=CANCEL_SHIPMENT,
        undo=lambda order: services.shipment_cancel(order=order),
    )
