"""The inventory service's saga tasks (queue ``inventory``)."""

from typing import Any

from celery import Task, shared_task

from orders.models import OrderLine, Reason
from orders.steps import RELEASE_STOCK, RESERVE_STOCK, line_step_name, run_compensation, run_step
from shop import services


# Its result is kept: the reservation chord counts its finished lines in the result backend.
@shared_task(bind=True, name="inventory.reserve_line", ignore_result=False)
def reserve_line(self: Task[Any, Any], order_id: str, line_id: int) -> None:
    line = OrderLine.objects.get(pk=line_id, order_id=order_id)
    run_step(
        self,
        order_id=order_id,
        step=RESERVE_STOCK,
        step_name=line_step_name(RESERVE_STOCK, line.sku),
        action=lambda order: services.stock_reserve(line=line),
        permanent={services.OutOfStock: Reason.OUT_OF_STOCK},
    )


@shared_task(bind=True, name="inventory.release_stock", max_retries=None)
def release_stock(self: Task[Any, Any], order_id: str) -> None:
    run_compensation(
        self,
        order_id=order_id,
        compensation=RELEASE_STOCK,
        undo=lambda order: services.stock_release(order_id=order.pk),
    )
