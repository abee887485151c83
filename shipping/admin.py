"""Shipments in the admin: read-only. Shipments change only through the saga's services.

Both are parts of an order (the shipment, and the carrier's record of it with the address's
postal code): seeing them needs ``orders.view_order`` besides the model's own view permission,
as the API shows a shipment only with its order (contract §3).
"""

from django.contrib import admin

from core.admin import ReadOnlyAdmin
from core.permissions import VIEW_EVERY_ORDER
from shipping.models import CarrierShipment, Shipment


@admin.register(Shipment)
class ShipmentAdmin(ReadOnlyAdmin):
    view_also_needs = (VIEW_EVERY_ORDER,)
    list_display = ["order_id", "status", "carrier", "tracking_number", "updated_at"]
    list_filter = ["status", "carrier"]
    search_fields = ["=order_id", "tracking_number"]


@admin.register(CarrierShipment)
class CarrierShipmentAdmin(ReadOnlyAdmin):
    """The simulated carrier's own register."""

    view_also_needs = (VIEW_EVERY_ORDER,)
    list_display = ["tracking_number", "status", "postal_code", "created_at"]
    list_filter = ["status"]
    search_fields = ["=tracking_number", "idempotency_key"]
