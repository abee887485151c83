"""What the inventory service reacts to when nobody orchestrates (choreography)."""

from events.catalog import TURNING_BACK
from events.registry import Event, subscribe
from events.services import Delivery
from sagas.hops import EventHops
from shop import steps

SERVICE = "inventory"


@subscribe("order.placed", "order.redriven", service=SERVICE, step=True, publishes=("stock.reserved", "stock.refused"))
def reserve_stock(event: Event, delivery: Delivery) -> None:
    hops = EventHops(delivery, SERVICE, succeeded="stock.reserved", refused="stock.refused", failed="stock.refused")
    steps.reserve_lines(order_id=event.saga_id, lines=event.context["lines"], hops=hops)


@subscribe(*TURNING_BACK, service=SERVICE, step=True, publishes=("stock.released",))
def release_stock(event: Event, delivery: Delivery) -> None:
    steps.release(order_id=event.saga_id, hops=EventHops(delivery, SERVICE, succeeded="stock.released"))
