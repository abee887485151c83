"""What the inventory service reacts to when nobody orchestrates (choreography)."""

from events.catalog import TURNING_BACK
from events.registry import BOTH_MODES, Event, subscribe
from events.services import Delivery
from sagas.hops import EventHops
from shop import steps
from shop.cart import cart_restore_order

SERVICE = "inventory"


@subscribe("order.placed", "order.redriven", service=SERVICE, step=True, publishes=("stock.reserved", "stock.refused"))
def reserve_stock(event: Event, delivery: Delivery) -> None:
    hops = EventHops(delivery, SERVICE, succeeded="stock.reserved", refused="stock.refused", failed="stock.refused")
    steps.reserve_lines(order_id=event.saga_id, lines=event.context["lines"], hops=hops)


@subscribe(*TURNING_BACK, service=SERVICE, step=True, publishes=("stock.released",))
def release_stock(event: Event, delivery: Delivery) -> None:
    steps.release(order_id=event.saga_id, hops=EventHops(delivery, SERVICE, succeeded="stock.released"))


# A failed payment leaves the customer wanting to try another card: their cart comes back.
PAYMENT_REASONS = frozenset({"payment_declined", "payment_failed"})


@subscribe("order.cancelled", service=SERVICE, modes=BOTH_MODES)
def restore_cart(event: Event) -> None:
    # Runs inside the transaction that records the event in the inbox (events.services): once.
    user_id = event.context.get("user_id")
    if event.data.get("reason") in PAYMENT_REASONS and user_id is not None:
        cart_restore_order(user_id=int(user_id), order_id=event.saga_id)
