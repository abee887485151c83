"""Shipment reads."""

from typing import Any

from shipping.models import Shipment


def shipment_of(order_id: Any) -> Shipment | None:
    """Our record of the order's shipment; ``None`` until the shipping service acts."""
    return Shipment.objects.filter(order_id=order_id).first()
