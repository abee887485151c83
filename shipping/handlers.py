"""What the shipping service reacts to when nobody orchestrates (choreography)."""

from events.catalog import TURNING_BACK
from events.registry import Event, subscribe
from events.services import Delivery
from sagas.hops import EventHops
from shipping import steps

SERVICE = "shipping"


@subscribe(
    "payment.charged",
    "order.redriven",
    service=SERVICE,
    step=True,
    publishes=("shipment.created", "shipment.rejected"),
)
def create_shipment(event: Event, delivery: Delivery) -> None:
    hops = EventHops(
        delivery, SERVICE, succeeded="shipment.created", refused="shipment.rejected", failed="shipment.rejected"
    )
    steps.ship(order_id=event.saga_id, address=event.context["shipping_address"], hops=hops)


@subscribe(*TURNING_BACK, service=SERVICE, step=True, publishes=("shipment.cancelled",))
def cancel_shipment(event: Event, delivery: Delivery) -> None:
    steps.cancel(order_id=event.saga_id, hops=EventHops(delivery, SERVICE, succeeded="shipment.cancelled"))
