"""Payments in the admin: read-only. Money moves only through the saga's services."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from payments.models import Payment, ProviderTransaction


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = ["order", "status", "amount", "refunded_amount", "currency", "updated_at"]
    list_filter = ["status"]
    search_fields = ["=order__id", "provider_reference"]
    list_select_related = ["order"]


@admin.register(ProviderTransaction)
class ProviderTransactionAdmin(ReadOnlyAdmin):
    """The simulated provider's own ledger, as its dashboard would show it."""

    list_display = ["created_at", "kind", "status", "amount", "currency", "order_ref", "reference"]
    list_filter = ["kind", "status"]
    search_fields = ["=order_ref", "=reference", "idempotency_key"]
