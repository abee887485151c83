"""The orchestrated order saga: the one place that knows the order of the steps.

    reserve every line ─► charge ─► ship (the order is completed)   (chord, then a chain)
    release stock     ◄─ refund ◄─ cancel shipment                    (their compensations)

Each step is a command to its service's queue (``inventory``, ``payments``, ``shipping``,
``orders``), carrying the plain data the service needs; any step that fails for good fires
the error callback, which runs the compensations in reverse. The canvas is the plan; the
outbox carries every hop of it (``sagas/hops.py``), and the chord over the lines joins in the
database: the last line reserved sends the charge. The database records where every saga
stands, so sending a saga again (recovery, a staff retry) only runs what is left: a finished
step is a no-op.

The choreographed saga has no such place: its steps are the subscriptions of each service's
``handlers`` module (``manage.py event_map`` draws them).
"""

from collections.abc import Sequence
from typing import Any

from celery import chain, group
from celery.canvas import Signature

from orders import tasks as order_tasks
from orders.models import Order, OrderEvent, OrderLine, Status
from orders.transitions import order_record_action
from outbox.services import outbox_send
from payments import tasks as payment_tasks
from shipping import tasks as shipping_tasks
from shop import tasks as inventory_tasks


def order_saga(order: Order, lines: Sequence[OrderLine], *, start_at: Status = Status.PENDING) -> Signature[Any]:
    """The order's saga, from the step that runs in ``start_at`` on."""
    order_id = str(order.pk)
    steps: list[Signature[Any]] = []
    if start_at == Status.PENDING:
        reserve = [inventory_tasks.reserve_line.si(order_id, line.pk, line.sku, line.quantity) for line in lines]
        steps.append(group(reserve))  # undo: release_stock
    if start_at in (Status.PENDING, Status.RESERVED):
        steps.append(payment_tasks.charge.si(order_id, str(order.total), order.payment_token))  # undo: refund
    steps.append(shipping_tasks.create_shipment.si(order_id, order.shipping_address))  # undo: cancel_shipment
    return chain(*steps).on_error(order_tasks.compensate.si(order_id))


def order_compensation(order_id: str) -> Signature[Any]:
    """Undo in reverse; each compensation does nothing when its step never ran."""
    return chain(
        shipping_tasks.cancel_shipment.si(order_id),
        payment_tasks.refund.si(order_id),
        inventory_tasks.release_stock.si(order_id),
        order_tasks.finish_compensation.si(order_id),
    )


def saga_send(order: Order, lines: Sequence[OrderLine]) -> None:
    """Send what is left of the order's saga, from its status on (in the caller's transaction)."""
    outbox_send(message=order_saga(order, lines, start_at=Status(order.status)), shard=str(order.pk))
    if order.status == Status.PENDING:
        _journal(order, inventory_tasks.reserve_line.name, detail=f"{len(lines)} line(s), in parallel")
    elif order.status == Status.RESERVED:
        _journal(order, payment_tasks.charge.name)
    else:
        _journal(order, shipping_tasks.create_shipment.name)


def compensation_send(order: Order) -> None:
    """Send the order's compensations (in the transaction that made it ``compensating``)."""
    outbox_send(message=order_compensation(str(order.pk)), shard=str(order.pk))
    _journal(order, shipping_tasks.cancel_shipment.name, detail="the undo chain begins")


def _journal(order: Order, command: str, detail: str = "") -> None:
    """The orchestrator's first command, in the journal (each step journals the next one)."""
    order_record_action(
        order=order, actor="system", service="orders", kind=OrderEvent.Kind.COMMAND, name=command, message=detail
    )
