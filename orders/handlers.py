"""What the orders service reacts to when nobody orchestrates (choreography), and what it announces.

The steps move the order's status in the transactions that record their outcomes; what the
orders service decides on its own is when the order has been undone: each service announces
its undo, and the last one to arrive closes the order.

The orders service also announces events of its own, outside any handler (``orders/events.py``):
they are declared here, beside its subscriptions, so that the registry knows every publisher.
"""

import contextlib

from events.registry import CHOREOGRAPHY, Event, ends, publishes, subscribe
from orders import services
from orders.events import SERVICE
from sagas.runtime import NotYetDone

# In both modes: the new order, and how it ended (the customer's emails).
publishes(SERVICE, "order.placed", "order.completed", "order.cancelled", "order.needs_attention")
# Choreographed sagas only (an orchestrated one is sent its canvas instead): a stalled saga
# woken up, and an order turned back for a reason that is no service's failure (a cancel).
publishes(SERVICE, "order.redriven", "order.compensating", modes=(CHOREOGRAPHY,))
# The saga is over when these are announced: the order's outcome, and the shipment handed to
# the carrier, which completes the order in the same transaction (``orders/plan.py``) and so
# needs nobody to react.
ends("order.completed", "order.cancelled", "order.needs_attention", "shipment.created")


@subscribe(
    "stock.released",
    "payment.refunded",
    "shipment.cancelled",
    service=SERVICE,
    publishes=("order.cancelled", "order.needs_attention"),
)
def close_when_undone(event: Event) -> None:
    # While another service is still undoing its part, its announcement closes the order.
    with contextlib.suppress(NotYetDone):
        services.order_finish_compensation(order_id=event.saga_id)
