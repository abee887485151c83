"""Shipments in the admin: read-only. Shipments change only through the saga's services."""

from django.contrib import admin

from core.admin import ReadOnlyAdmin
from shipping.models import CarrierShipment, Shipment


@admin.register(Shipment)
class ShipmentAdmin(ReadOnlyAdmin):
    list_display = ["order_id", "status", "carrier", "tracking_number", "updated_at"]
    list_filter = ["status", "carrier"]
    search_fields = ["=order_id", "tracking_number"]


@admin.register(CarrierShipment)
class CarrierShipmentAdmin(ReadOnlyAdmin):
    """The simulated carrier's own register."""

    list_display = ["tracking_number", "status", "postal_code", "created_at"]
    list_filter = ["status"]
    search_fields = ["=tracking_number", "idempotency_key"]
