"""What the orders service reacts to when nobody orchestrates (choreography), and what it announces.

The orders service follows the others' events: stock reserved, payment charged and shipment
created move the order on; each service's undo announcement is counted, and the last one to
arrive closes the order. A step that fails for good turns the order back itself, in the
transaction that records the failure: that is what keeps any later step from starting.

The orders service also announces events of its own, outside any handler (``orders/events.py``):
they are declared here, beside its subscriptions, so that the registry knows every publisher.
"""

import contextlib

from events.registry import CHOREOGRAPHY, Event, ends, publishes, subscribe
from orders import services
from orders.events import SERVICE
from orders.models import Status
from orders.plan import ORDER_SAGA
from sagas.runtime import NotYetDone

# In both modes: the new order, and how it ended (the customer's emails).
publishes(SERVICE, "order.placed", "order.held", "order.completed", "order.cancelled", "order.needs_attention")
# Choreographed sagas only (an orchestrated one is sent its canvas instead): a stalled saga
# woken up, and an order turned back for a reason that is no service's failure (a cancel).
publishes(SERVICE, "order.redriven", "order.compensating", modes=(CHOREOGRAPHY,))
# The saga is over when these are announced: the order's outcome.
ends("order.completed", "order.cancelled", "order.needs_attention")

# Each step's success moves the order on to the status customers see after it (the plan's).
ADVANCES = {step.succeeded: Status(step.advances_to) for step in ORDER_SAGA.steps if step.advances_to}


# Several at once where they wait together (a worker that ran the saga's steps in process):
# an order's moves in one transaction.
@subscribe(*ADVANCES, service=SERVICE, publishes=("order.completed",), batch=True)
def advance_when_a_step_is_done(event: Event) -> None:
    services.order_advance(order_id=event.saga_id, to=ADVANCES[event.name], message=f"{event.name} ({event.publisher})")


@subscribe(
    *(undo.announces for undo in ORDER_SAGA.compensations),
    service=SERVICE,
    publishes=("order.cancelled", "order.needs_attention"),
)
def close_when_undone(event: Event) -> None:
    # While another service is still undoing its part, its announcement closes the order.
    with contextlib.suppress(NotYetDone):
        services.order_finish_compensation(order_id=event.saga_id)
