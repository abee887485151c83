"""What the payment service reacts to when nobody orchestrates (choreography): its step and its
undo, heard when the saga's plan says (``sagas.hops.subscribe_step``)."""

from events.registry import Event
from events.services import Delivery
from payments import steps
from sagas.hops import EventHops, subscribe_step

SERVICE = "payments"


@subscribe_step(steps.CHARGE_PAYMENT, service=SERVICE)
def charge_payment(event: Event, delivery: Delivery) -> None:
    steps.charge(order_id=event.saga_id, context=event.context, hops=EventHops.for_step(delivery, steps.CHARGE_PAYMENT))


@subscribe_step(steps.REFUND_PAYMENT, service=SERVICE)
def refund_payment(event: Event, delivery: Delivery) -> None:
    steps.refund(order_id=event.saga_id, hops=EventHops.for_step(delivery, steps.REFUND_PAYMENT))
