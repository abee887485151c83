"""What the risk service reacts to when nobody orchestrates (choreography): its step, heard
when the saga's plan says (``sagas.hops.subscribe_step``). The screening undoes nothing."""

from events.registry import Event
from events.services import Delivery
from risk import steps
from sagas.hops import EventHops, subscribe_step


@subscribe_step(steps.SCREEN_ORDER, service="risk")
def screen_order(event: Event, delivery: Delivery) -> None:
    steps.screen(order_id=event.saga_id, context=event.context, hops=EventHops.for_step(delivery, steps.SCREEN_ORDER))
