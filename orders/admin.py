"""The order admin: read-only records, and staff actions that call the same services as the API.

Orders change only through their services (the status machine, the saga), so every field here
is read-only; what staff can do is the three actions below, each behind its own permission,
each confirmed on an intermediate page and recorded in the order's timeline under their name.
"""

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from core.admin import ReadOnlyAdmin
from core.api import Conflict
from orders import services
from orders.models import Order, OrderEvent, OrderLine, Reason, SagaStep
from payments.models import Payment
from payments.selectors import provider_transactions
from shipping.models import Shipment


@dataclass(frozen=True)
class StaffAction:
    name: str
    label: str
    permission: str  # codename in Order.Meta.permissions
    explanation: str
    run: Callable[..., Order]


STAFF_ACTIONS = {
    action.name: action
    for action in (
        StaffAction(
            "cancel",
            "Cancel and compensate",
            "cancel_order",
            "The saga stops; stock is released, the payment refunded and the shipment cancelled.",
            partial(services.order_cancel, reason=Reason.STAFF_REQUEST),
        ),
        StaffAction(
            "retry_saga",
            "Retry saga",
            "retry_saga",
            "The saga is driven on from where it stands; steps already done are not repeated.",
            services.order_retry_saga,
        ),
        StaffAction(
            "retry_compensation",
            "Retry compensation",
            "retry_compensation",
            "The compensations that gave up run again.",
            services.order_retry_compensation,
        ),
    )
}


class ReadOnlyInline(admin.TabularInline):  # type: ignore[type-arg]
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class OrderLineInline(ReadOnlyInline):
    model = OrderLine
    fields = readonly_fields = (
        "sku",
        "name",
        "quantity",
        "unit_price",
    )


class SagaStepInline(ReadOnlyInline):
    model = SagaStep
    verbose_name_plural = "saga timeline"
    fields = readonly_fields = (
        "name",
        "kind",
        "status",
        "attempts",
        "started_at",
        "finished_at",
        "error",
    )


class OrderEventInline(ReadOnlyInline):
    model = OrderEvent
    verbose_name_plural = "order events (audit)"
    fields = readonly_fields = (
        "created_at",
        "from_status",
        "to_status",
        "actor",
        "message",
    )


class PaymentInline(ReadOnlyInline):
    model = Payment
    fields = readonly_fields = (
        "status",
        "amount",
        "refunded_amount",
        "currency",
        "provider_reference",
        "updated_at",
    )


class ShipmentInline(ReadOnlyInline):
    model = Shipment
    fields = readonly_fields = (
        "status",
        "carrier",
        "tracking_number",
        "updated_at",
    )


@admin.register(Order)
class OrderAdmin(ReadOnlyAdmin):
    """Orders are placed by customers and changed by their saga; the admin reads and acts."""

    list_display = ["id", "customer", "status", "cancellation_reason", "total", "created_at"]
    list_filter = ["status", "cancellation_reason", "created_at"]
    search_fields = ["=id", "user__username", "user__email", "lines__sku"]
    list_select_related = ["user"]
    date_hierarchy = "created_at"
    fields = (
        "id",
        "user",
        "status",
        "cancellation_reason",
        "total",
        "currency",
        "shipping_address",
        "created_at",
        "updated_at",
        "progressed_at",
        "provider_ledger",
    )
    readonly_fields = fields
    inlines = [OrderLineInline, PaymentInline, ShipmentInline, SagaStepInline, OrderEventInline]
    actions = ["cancel_orders", "retry_sagas", "retry_compensations"]
    change_form_template = "admin/orders/order/change_form.html"

    @admin.display(description="customer", ordering="user__username")
    def customer(self, order: Order) -> str:
        return order.user.get_username()

    @admin.display(description="payment provider transactions")
    def provider_ledger(self, order: Order) -> SafeString:
        entries = provider_transactions(order_id=str(order.pk))
        if not entries:
            return format_html("<span>{}</span>", "None: the provider has no record for this order.")
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (e.created_at.strftime("%Y-%m-%d %H:%M:%S"), e.kind, e.amount, e.status, e.reference, e.idempotency_key)
                for e in entries
            ),
        )
        head = (
            "<tr><th>at</th><th>kind</th><th>amount</th><th>status</th><th>reference</th><th>idempotency key</th></tr>"
        )
        return format_html("<table><thead>{}</thead><tbody>{}</tbody></table>", SafeString(head), rows)

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("orders.cancel_order")

    def has_retry_saga_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("orders.retry_saga")

    def has_retry_compensation_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("orders.retry_compensation")

    # --- actions on the list ------------------------------------------------------------------

    @admin.action(description="Cancel and compensate the selected orders", permissions=["cancel"])
    def cancel_orders(self, request: HttpRequest, queryset: QuerySet[Order]) -> HttpResponse | None:
        return self._confirm_or_run(request, STAFF_ACTIONS["cancel"], queryset, action_field="cancel_orders")

    @admin.action(description="Retry the saga of the selected orders", permissions=["retry_saga"])
    def retry_sagas(self, request: HttpRequest, queryset: QuerySet[Order]) -> HttpResponse | None:
        return self._confirm_or_run(request, STAFF_ACTIONS["retry_saga"], queryset, action_field="retry_sagas")

    @admin.action(description="Retry the compensation of the selected orders", permissions=["retry_compensation"])
    def retry_compensations(self, request: HttpRequest, queryset: QuerySet[Order]) -> HttpResponse | None:
        return self._confirm_or_run(
            request, STAFF_ACTIONS["retry_compensation"], queryset, action_field="retry_compensations"
        )

    # --- the same actions from an order's page ------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        own = [
            path(
                "<uuid:object_id>/act/<str:action>/",
                self.admin_site.admin_view(self.order_action_view),
                name="orders_order_act",
            )
        ]
        return own + super().get_urls()

    def order_action_view(self, request: HttpRequest, object_id: str, action: str) -> HttpResponse:
        staff_action = STAFF_ACTIONS.get(action)
        order = self.get_object(request, object_id)
        if staff_action is None or order is None:
            raise Http404("No such order or action.")
        if not request.user.has_perm(f"orders.{staff_action.permission}"):
            raise PermissionDenied
        change_url = reverse("admin:orders_order_change", args=[order.pk])
        if request.method == "POST":
            self._run(request, staff_action, [order])
            return HttpResponseRedirect(change_url)
        return self._confirmation(request, staff_action, [order], action_field=None, cancel_url=change_url)

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        allowed = [a for a in STAFF_ACTIONS.values() if request.user.has_perm(f"orders.{a.permission}")]
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), "staff_actions": allowed})

    # --- shared -------------------------------------------------------------------------------

    def _confirm_or_run(
        self, request: HttpRequest, action: StaffAction, queryset: QuerySet[Order], *, action_field: str
    ) -> HttpResponse | None:
        orders = list(queryset)
        if request.POST.get("confirmed") == "yes":
            self._run(request, action, orders)
            return None  # back to the list
        cancel_url = reverse("admin:orders_order_changelist")
        return self._confirmation(request, action, orders, action_field=action_field, cancel_url=cancel_url)

    def _confirmation(
        self,
        request: HttpRequest,
        action: StaffAction,
        orders: list[Order],
        *,
        action_field: str | None,
        cancel_url: str,
    ) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": f"{action.label}: are you sure?",
            "opts": self.model._meta,
            "staff_action": action,
            "orders": orders,
            "action_field": action_field,
            "checkbox_name": ACTION_CHECKBOX_NAME,
            "cancel_url": cancel_url,
        }
        return TemplateResponse(request, "admin/orders/order/action_confirmation.html", context)

    def _run(self, request: HttpRequest, action: StaffAction, orders: list[Order]) -> None:
        actor = request.user.get_username()
        for order in orders:
            try:
                action.run(order_id=order.pk, actor=actor)
            except Conflict as exc:
                # A state the action does not apply to (e.g. cancelling a completed order).
                self.message_user(request, f"Order {order.pk}: {exc.detail}", messages.ERROR)
            else:
                self.message_user(request, f"Order {order.pk}: {action.label.lower()} requested.", messages.SUCCESS)
