"""What the inventory service reacts to when nobody orchestrates (choreography)."""

from events.registry import BOTH_MODES, Event, subscribe
from events.services import Delivery
from sagas.hops import EventHops, subscribe_step
from shop import steps
from shop.cart import cart_restore_order

SERVICE = "inventory"


@subscribe_step(steps.RESERVE_STOCK, service=SERVICE)
def reserve_stock(event: Event, delivery: Delivery) -> None:
    hops = EventHops.for_step(delivery, steps.RESERVE_STOCK)
    steps.reserve_lines(order_id=event.saga_id, context=event.context, hops=hops)


@subscribe_step(steps.RELEASE_STOCK, service=SERVICE)
def release_stock(event: Event, delivery: Delivery) -> None:
    steps.release(order_id=event.saga_id, hops=EventHops.for_step(delivery, steps.RELEASE_STOCK))


# A failed payment leaves the customer wanting to try another card: their cart comes back.
PAYMENT_REASONS = frozenset({"payment_declined", "payment_failed"})


@subscribe("order.cancelled", service=SERVICE, modes=BOTH_MODES)
def restore_cart(event: Event) -> None:
    # Runs inside the transaction that records the event in the inbox (events.services): once.
    user_id = event.context.get("user_id")
    if event.data.get("reason") in PAYMENT_REASONS and user_id is not None:
        cart_restore_order(user_id=int(user_id), order_id=event.saga_id)
