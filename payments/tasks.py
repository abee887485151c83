"""The payments service's saga tasks (queue ``payments``)."""

from typing import Any

from celery import Task, shared_task

from orders.models import Reason
from orders.steps import CHARGE_PAYMENT, REFUND_PAYMENT, run_compensation, run_step
from payments import services
from payments.providers import PaymentDeclined


@shared_task(bind=True, name="payments.charge")
def charge(self: Task[Any, Any], order_id: str) -> None:
    run_step(
        self,
        order_id=order_id,
        step=CHARGE_PAYMENT,
        action=lambda order: services.payment_charge(order=order),
        undo=lambda order: services.payment_refund(order=order),
        permanent={PaymentDeclined: Reason.PAYMENT_DECLINED},
    )


@shared_task(bind=True, name="payments.refund")
def refund(self: Task[Any, Any], order_id: str) -> None:
    run_compensation(
        self, order_id=order_id, compensation=REFUND_PAYMENT, undo=lambda order: services.payment_refund(order=order)
    )
