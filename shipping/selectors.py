"""Shipment reads."""

from typing import Any

from shipping.carriers import get_carrier
from shipping.models import Shipment
from shipping.services import shipment_key


def shipment_of(order_id: Any) -> Shipment | None:
    """Our record of the order's shipment; ``None`` until the shipping service acts."""
    return Shipment.objects.filter(order_id=order_id).first()


def shipments_of(order_ids: list[Any]) -> dict[Any, Shipment]:
    """The shipments of many orders at once, by order id."""
    return {shipment.order_id: shipment for shipment in Shipment.objects.filter(order_id__in=order_ids)}


def shipment_live_at_carrier(*, order_id: Any) -> bool:
    """Whether the carrier holds a live (not cancelled) shipment for the order, as the carrier
    says; raises ``KeyInUse`` while a create attempt is in flight (unknown yet)."""
    receipt = get_carrier().find_shipment(idempotency_key=shipment_key(order_id))
    return receipt is not None and receipt.live
