"""What the orders service reacts to when nobody orchestrates (choreography).

The steps move the order's status in the transactions that record their outcomes; what the
orders service decides on its own is when the order has been undone: each service announces
its undo, and the last one to arrive closes the order.
"""

import contextlib

from events.registry import Event, subscribe
from orders import services
from sagas.runtime import NotYetDone


@subscribe(
    "stock.released",
    "payment.refunded",
    "shipment.cancelled",
    service="orders",
    publishes=("order.cancelled", "order.needs_attention"),
)
def close_when_undone(event: Event) -> None:
    # While another service is still undoing its part, its announcement closes the order.
    with contextlib.suppress(NotYetDone):
        services.order_finish_compensation(order_id=event.saga_id)
