"""Shipment reads."""

from typing import Any

from shipping.models import Shipment


def shipment_of(order_id: Any) -> Shipment | None:
    """Our record of the order's shipment; ``None`` until the shipping service acts."""
    return Shipment.objects.filter(order_id=order_id).first()


def shipments_of(order_ids: list[Any]) -> dict[Any, Shipment]:
    """The shipments of many orders at once, by order id."""
    return {shipment.order_id: shipment for shipment in Shipment.objects.filter(order_id__in=order_ids)}
