"""Payments in the admin: read-only. Money moves only through the saga's services.

The rights are the API's (contract §3): our payment record is part of its order, which needs
``orders.view_order`` (the API shows it only with the order); the provider's reference on it is
the provider's ledger, which needs ``payments.view_providertransaction`` as the provider's
transactions do (its own admin below, and ``GET /api/payments/transactions/``).
"""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from core.admin import ReadOnlyAdmin
from core.permissions import VIEW_EVERY_ORDER, can_read_payment_ledger
from payments.models import Payment, ProviderTransaction
from payments.providers import PaymentError
from payments.selectors import provider_transactions
from payments.stripe_provider import dashboard_url

LEDGER_FIELDS = ("provider_reference", "stripe_payment_intent", "provider_ledger")


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    view_also_needs = (VIEW_EVERY_ORDER,)
    list_display = ["order_id", "status", "amount", "refunded_amount", "currency", "updated_at"]
    list_filter = ["status"]
    search_fields = ["=order_id", "provider_reference"]
    readonly_fields = ("stripe_payment_intent", "provider_ledger")

    @admin.display(description="Stripe PaymentIntent")
    def stripe_payment_intent(self, payment: Payment) -> str:
        url = dashboard_url(payment.provider_reference)
        return format_html('<a href="{}" rel="noopener">{}</a>', url, payment.provider_reference) if url else "-"

    @admin.display(description="At the provider (charges and refunds)")
    def provider_ledger(self, payment: Payment) -> str:
        """What the provider holds for the order, asked now (the page still shows if it cannot answer)."""
        try:
            ledger = provider_transactions(order_id=str(payment.order_id))
        except PaymentError as exc:
            return f"The provider did not answer: {exc}"
        if not ledger:
            return "Nothing"
        return format_html(
            "<ul>{}</ul>",
            format_html_join("", "<li>{} {} {} ({})</li>", ((e.kind, e.amount, e.status, e.reference) for e in ledger)),
        )

    def get_fields(self, request: HttpRequest, obj: Payment | None = None) -> Any:
        fields = super().get_fields(request, obj)
        return fields if can_read_payment_ledger(request.user) else [f for f in fields if f not in LEDGER_FIELDS]

    def get_search_fields(self, request: HttpRequest) -> Any:
        # Searching by a reference would tell who may not read the ledger which references exist.
        fields = super().get_search_fields(request)
        if can_read_payment_ledger(request.user):
            return fields
        return [f for f in fields if f.lstrip("=^@") not in LEDGER_FIELDS]


@admin.register(ProviderTransaction)
class ProviderTransactionAdmin(ReadOnlyAdmin):
    """The simulated provider's own ledger, as its dashboard would show it (its own permission,
    ``view_providertransaction``, as in the API)."""

    list_display = ["created_at", "kind", "status", "amount", "currency", "order_ref", "reference"]
    list_filter = ["kind", "status"]
    search_fields = ["=order_ref", "=reference", "idempotency_key"]
