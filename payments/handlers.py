"""What the payment service reacts to when nobody orchestrates (choreography)."""

from events.catalog import TURNING_BACK
from events.registry import Event, subscribe
from events.services import Delivery
from payments import steps
from sagas.hops import EventHops

SERVICE = "payments"


@subscribe(
    "stock.reserved",
    "order.redriven",
    service=SERVICE,
    step=True,
    publishes=("payment.charged", "payment.declined", "payment.failed"),
)
def charge_payment(event: Event, delivery: Delivery) -> None:
    hops = EventHops(
        delivery, SERVICE, succeeded="payment.charged", refused="payment.declined", failed="payment.failed"
    )
    context = event.context
    steps.charge(order_id=event.saga_id, amount=context["total"], token=context["payment_token"], hops=hops)


@subscribe(*TURNING_BACK, service=SERVICE, step=True, publishes=("payment.refunded",))
def refund_payment(event: Event, delivery: Delivery) -> None:
    steps.refund(order_id=event.saga_id, hops=EventHops(delivery, SERVICE, succeeded="payment.refunded"))
