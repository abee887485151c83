"""What the orders service announces, in the transaction of the change (both modes).

``order.placed`` starts a choreographed saga and tells the customer; ``order.held`` tells them
that a person checks the order before it goes on; ``order.completed``,
``order.cancelled`` and ``order.needs_attention`` tell the customer how it ended;
``order.compensating`` asks every service to undo its part when the order turns back for a
reason that is no service's failure (a cancel, an expiry, staff, the sweeper), and
``order.redriven`` wakes a choreographed saga that stalled.
"""

from collections.abc import Iterable, Sequence
from typing import Any

from events.services import event_publish
from orders.journal import order_record_action
from orders.models import Order, OrderEvent, OrderLine, Status
from orders.plan import HELD_STATUSES
from payments.selectors import payment_of
from shipping.selectors import shipment_of

SERVICE = "orders"


def order_context(order: Order, lines: Sequence[OrderLine] | None = None) -> dict[str, Any]:
    """The order as placed: what the services need to act on it, carried along its events."""
    context: dict[str, Any] = {
        "order_id": str(order.pk),
        "user_id": order.user_id,
        "total": str(order.total),
        "currency": order.currency,
    }
    if lines is not None:
        context |= {
            "payment_token": order.payment_token,
            "shipping_address": order.shipping_address,
            "lines": [{"line_id": line.pk, "sku": line.sku, "quantity": line.quantity} for line in lines],
        }
    return context


def order_placed_announce(order: Order, lines: Sequence[OrderLine], *, only: Iterable[str] | None = None) -> None:
    _announce(order, "order.placed", context=order_context(order, lines), only=only)


def order_redriven_announce(order: Order, lines: Sequence[OrderLine], *, only: Iterable[str] | None = None) -> None:
    _announce(order, "order.redriven", data={"status": order.status}, context=order_context(order, lines), only=only)


def order_compensating_announce(order: Order, *, only: Iterable[str] | None = None) -> None:
    _announce(order, "order.compensating", data={"reason": order.cancellation_reason or ""}, only=only)


def order_status_announce(order: Order) -> None:
    """Announce an order's end: completed (with its tracking), cancelled (with its refund)."""
    if order.status == Status.COMPLETED:
        shipment = shipment_of(order.pk)
        data = {"carrier": shipment.carrier, "tracking_number": shipment.tracking_number} if shipment else {}
        _announce(order, "order.completed", data=data)
    elif order.status == Status.CANCELLED:
        payment = payment_of(order.pk)
        refunded = payment.refunded_amount if payment else 0
        _announce(order, "order.cancelled", data={"reason": order.cancellation_reason, "refunded": str(refunded)})
    elif order.status == Status.NEEDS_ATTENTION:
        _announce(order, "order.needs_attention", data={"reason": order.cancellation_reason or ""})
    elif order.status in HELD_STATUSES:  # a step waits for a person's decision (a review)
        _announce(order, "order.held", data={"status": order.status})


def _announce(
    order: Order,
    name: str,
    *,
    data: dict[str, Any] | None = None,
    context: dict[str, Any] | None = None,
    only: Iterable[str] | None = None,
) -> None:
    event_publish(
        name=name,
        saga_id=order.pk,
        mode=order.coordination,
        publisher=SERVICE,
        data=data,
        context=context or order_context(order),
        only=only,
    )
    order_record_action(
        order=order,
        actor="system",
        service=SERVICE,
        kind=OrderEvent.Kind.EVENT,
        name=name,
        message=", ".join(f"{k}: {v}" for k, v in (data or {}).items()),
    )
