"""The order saga: the one place that knows the order of the steps.

    reserve every line ─► charge ─► ship (the order is completed)   (chord, then a chain)
    release stock     ◄─ refund ◄─ cancel shipment                    (their compensations)

Each step is a task on its service's queue (``inventory``, ``payments``, ``shipping``,
``orders``); any step that fails for good fires the error callback, which runs the
compensations in reverse. The database records where every saga stands, so sending a
saga again (recovery, a staff retry) only runs what is left: a finished step is a no-op.
"""

from collections.abc import Iterable
from typing import Any

from celery import chain, group
from celery.canvas import Signature

from orders import tasks as order_tasks
from orders.models import Order, Status
from payments import tasks as payment_tasks
from shipping import tasks as shipping_tasks
from shop import tasks as inventory_tasks


def order_saga(order_id: str, line_ids: Iterable[int]) -> Signature[Any]:
    """The whole saga of a new order.

    The lines are reserved in parallel, and the last one reserved moves the order to
    ``reserved``; ``chain`` makes the group and the charge after it a chord (an order of one
    line is a plain chain, with no chord to count).
    """
    reserve_every_line = group([inventory_tasks.reserve_line.si(order_id, line_id) for line_id in line_ids])
    return chain(
        reserve_every_line,  # undo: release_stock
        payment_tasks.charge.si(order_id),  # undo: refund
        shipping_tasks.create_shipment.si(order_id),  # undo: cancel_shipment
    ).on_error(order_tasks.compensate.si(order_id))


def order_saga_resumed(order: Order) -> Signature[Any]:
    """What is left of the order's saga, for recovery and staff retries.

    No chord here: a chord's join is counted in the result backend, and a recovery may be
    running because that count went wrong (a header message delivered twice, or lost). The
    join (``confirm_reservation``) waits on the lines' recorded steps in the database instead.
    """
    order_id = str(order.pk)
    rest = chain(
        order_tasks.confirm_reservation.si(order_id),
        payment_tasks.charge.si(order_id),
        shipping_tasks.create_shipment.si(order_id),
    ).on_error(order_tasks.compensate.si(order_id))
    if order.status != Status.PENDING:
        return rest
    line_ids = order.lines.order_by("id").values_list("id", flat=True)
    reserve = [
        inventory_tasks.reserve_line.si(order_id, line_id).on_error(order_tasks.compensate.si(order_id))
        for line_id in line_ids
    ]
    return group(*reserve, rest)


def order_compensation(order_id: str) -> Signature[Any]:
    """Undo in reverse; each compensation does nothing when its step never ran."""
    return chain(
        shipping_tasks.cancel_shipment.si(order_id),
        payment_tasks.refund.si(order_id),
        inventory_tasks.release_stock.si(order_id),
        order_tasks.finish_compensation.si(order_id),
    )


def saga_start(order: Order, line_ids: Iterable[int]) -> None:
    """Send the order's saga (call after the order has committed): one message per line."""
    order_saga(str(order.pk), line_ids).apply_async()


def saga_resume(order: Order) -> None:
    """Send what is left of the order's saga (call after commit)."""
    order_saga_resumed(order).apply_async()


def compensation_start(order_id: Any) -> None:
    """Send the order's compensations (call after the order went ``compensating``)."""
    order_compensation(str(order_id)).apply_async()
