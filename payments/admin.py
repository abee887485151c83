"""Payments in the admin: read-only. Money moves only through the saga's services."""

from django.contrib import admin

from core.admin import ReadOnlyAdmin
from payments.models import Payment, ProviderTransaction


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = ["order_id", "status", "amount", "refunded_amount", "currency", "updated_at"]
    list_filter = ["status"]
    search_fields = ["=order_id", "provider_reference"]


@admin.register(ProviderTransaction)
class ProviderTransactionAdmin(ReadOnlyAdmin):
    """The simulated provider's own ledger, as its dashboard would show it."""

    list_display = ["created_at", "kind", "status", "amount", "currency", "order_ref", "reference"]
    list_filter = ["kind", "status"]
    search_fields = ["=order_ref", "=reference", "idempotency_key"]
