"""What the shipping service reacts to when nobody orchestrates (choreography): its step and its
undo, heard when the saga's plan says (``sagas.hops.subscribe_step``)."""

from events.registry import Event
from events.services import Delivery
from sagas.hops import EventHops, subscribe_step
from shipping import steps

SERVICE = "shipping"


@subscribe_step(steps.CREATE_SHIPMENT, service=SERVICE)
def create_shipment(event: Event, delivery: Delivery) -> None:
    steps.ship(order_id=event.saga_id, context=event.context, hops=EventHops.for_step(delivery, steps.CREATE_SHIPMENT))


@subscribe_step(steps.CANCEL_SHIPMENT, service=SERVICE)
def cancel_shipment(event: Event, delivery: Delivery) -> None:
    steps.cancel(order_id=event.saga_id, hops=EventHops.for_step(delivery, steps.CANCEL_SHIPMENT))
