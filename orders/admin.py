"""The order admin: read-only records, and staff actions that call the same services as the API.

Orders change only through their services (the status machine, the saga), so every field here
is read-only; what staff can do is the three actions of ``orders.staff``, each behind its own
permission, offered only where it applies, confirmed on an intermediate page and recorded in the
order's timeline under their name; and add notes to that timeline.

The rights are the API's (contract §3, ``core.permissions``): every page of an order, its lines
and journal, every action and note needs ``orders.view_order`` (a staff member who may not see
the order may not act on it either), and an action its own permission too; the provider's
ledger (its transactions, and the provider's reference on the payment) needs
``payments.view_providertransaction``, and is withheld from the page without it.
"""

import re
from functools import partial
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.views.decorators.http import require_POST

from core.addresses import address_lines
from core.admin import ReadOnlyAdmin
from core.api import Conflict
from core.permissions import VIEW_EVERY_ORDER, can_read_payment_ledger
from core.templatetags.shop_tags import order_number
from orders.journal import journal_entries
from orders.models import Order, OrderEvent, OrderLine, Status
from orders.operations_admin import stuck_view  # also registers the outbox's and inbox's admin
from orders.selectors import order_timeline
from orders.sequence import sequence_svg
from orders.services import ActionRefused
from orders.staff import (
    NOTE_MAX_LENGTH,
    STAFF_ACTIONS,
    StaffAction,
    order_note_add,
    staff_action_refusal,
    staff_action_run,
    staff_actions_applicable,
)
from payments.selectors import provider_transactions

# "#a0e84265" or "a0e84265": the short number customers quote (the UUID's first 8 hex digits).
SHORT_NUMBER = re.compile(r"^#?([0-9a-f]{8})$", re.IGNORECASE)
# The list's status filter -> the actions that can apply to orders in that status.
ACTIONS_FOR_STATUS = {
    Status.PENDING: {"cancel_orders", "retry_sagas"},
    Status.RESERVED: {"cancel_orders", "retry_sagas"},
    Status.PAID: {"cancel_orders", "retry_sagas"},
    Status.COMPENSATING: {"retry_sagas"},
    Status.NEEDS_ATTENTION: {"retry_compensations"},
    Status.COMPLETED: set(),
    Status.CANCELLED: set(),
}


class StaffNoteForm(forms.Form):
    text = forms.CharField(
        label="Add a note",
        max_length=NOTE_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="For staff only: customers do not see notes. Saved with your name and the time.",
    )


class ReadOnlyInline(admin.TabularInline):  # type: ignore[type-arg]
    """A part of the order (its lines, its journal): seen with the order, as the API shows it."""

    extra = 0
    can_delete = False
    show_change_link = False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm(VIEW_EVERY_ORDER)

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


class OrderEventInline(ReadOnlyInline):
    model = OrderEvent
    verbose_name_plural = "journal: commands, events, retries, compensations, status changes, staff actions"
    ordering = ["created_at", "id"]
    fields = readonly_fields = (
        "when",
        "service",
        "kind",
        "name",
        "to_status",
        "acted_by",
        "message",
        "trace",
    )

    @admin.display(description="trace")
    def trace(self, event: OrderEvent) -> str:
        """The trace the line was written in, linked to the tracing UI when ``OTEL_TRACES_URL``
        says where that is (a template with ``{trace_id}``)."""
        if not event.trace_id:
            return ""
        if not settings.OTEL_TRACES_URL:
            return event.trace_id
        url = settings.OTEL_TRACES_URL.replace("{trace_id}", event.trace_id)
        return format_html('<a href="{}" target="_blank" rel="noopener">{}</a>', url, event.trace_id)

    @admin.display(description="when")
    def when(self, event: OrderEvent) -> str:
        # In the shop's time zone, named: staff compare it with what customers see.
        return timezone.localtime(event.created_at).strftime("%Y-%m-%d %H:%M:%S %Z")


def _at(moment: Any) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S") if moment else ""


# The order page's fields from the provider's ledger -> what stands in for them without the right.
LEDGER_FIELDS = {"payment_record": "payment_summary", "provider_ledger": "provider_ledger_withheld"}
LEDGER_WITHHELD = "Withheld: the payment provider's ledger needs the permission to view provider transactions."


@admin.register(Order)
class OrderAdmin(ReadOnlyAdmin):
    """Orders are placed by customers and changed by their saga; the admin reads and acts."""

    # The short number customers quote, not the 36-character id (searchable, and on the order's page).
    list_display = ["number", "customer", "status", "cancellation_reason", "coordination", "total", "created_at"]
    list_display_links = ["number"]
    list_filter = ["status", "cancellation_reason", "coordination", "created_at"]
    search_fields = ["=id", "user__username", "user__email", "lines__sku"]
    list_select_related = ["user"]
    date_hierarchy = "created_at"
    fields = (
        "id",
        "user",
        "status",
        "cancellation_reason",
        "coordination",
        "total",
        "currency",
        "ship_to",
        "created_at",
        "updated_at",
        "progressed_at",
        "reconciled_at",
        "ledger_mismatch",
        "payment_record",
        "shipment_record",
        "saga_timeline",
        "sequence_diagram",
        "provider_ledger",
    )
    readonly_fields = fields
    inlines = [OrderLineInline, OrderEventInline]
    actions = ["cancel_orders", "retry_sagas", "retry_compensations"]
    change_form_template = "admin/orders/order/change_form.html"

    class Media:
        css = {"all": ["css/admin-orders.css"]}

    @admin.display(description="number")
    def number(self, order: Order) -> str:
        return f"#{order_number(order.pk)}"

    @admin.display(description="ship to")
    def ship_to(self, order: Order) -> SafeString:
        lines = format_html_join(SafeString("<br>"), "{}", ((line,) for line in address_lines(order.shipping_address)))
        return format_html("<address>{}</address>", lines)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Order], search_term: str
    ) -> tuple[QuerySet[Order], bool]:
        """Also find an order by the short number its customer quotes ("#a0e84265")."""
        short = SHORT_NUMBER.match(search_term.strip())
        if short:
            # The "#" is not part of any id, customer or SKU: search for the digits only.
            results, may_have_duplicates = super().get_search_results(request, queryset, short.group(1))
            return results | queryset.filter(id__startswith=short.group(1).lower()), may_have_duplicates
        return super().get_search_results(request, queryset, search_term)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        """Filtered to one status, the list offers only the actions that apply to that status."""
        actions = super().get_actions(request)
        status = request.GET.get("status__exact")
        if status in ACTIONS_FOR_STATUS:
            actions = {name: action for name, action in actions.items() if name in ACTIONS_FOR_STATUS[Status(status)]}
        return actions

    @admin.display(description="customer", ordering="user__username")
    def customer(self, order: Order) -> str:
        return order.user.get_username()

    def get_fields(self, request: HttpRequest, obj: Order | None = None) -> Any:
        return self._without_ledger_unless_allowed(request, super().get_fields(request, obj))

    def get_readonly_fields(self, request: HttpRequest, obj: Order | None = None) -> Any:
        return self._without_ledger_unless_allowed(request, super().get_readonly_fields(request, obj))

    def _without_ledger_unless_allowed(self, request: HttpRequest, fields: Any) -> Any:
        if can_read_payment_ledger(request.user):
            return fields
        return [LEDGER_FIELDS.get(name, name) for name in fields]

    @admin.display(description="payment")
    def payment_record(self, order: Order) -> str:
        """The payment with the provider's reference (``can_read_payment_ledger``)."""
        payment = order.payment
        if payment is None or not payment.provider_reference:
            return self.payment_summary(order)
        return f"{self.payment_summary(order)} (provider reference {payment.provider_reference})"

    @admin.display(description="payment")
    def payment_summary(self, order: Order) -> str:
        """What the API shows of the payment with the order: status and amounts."""
        payment = order.payment
        if payment is None:
            return "None yet"
        refunded = f", {payment.refunded_amount} refunded" if payment.refunded_amount else ""
        return f"{payment.status}: {payment.amount} {payment.currency}{refunded}"

    @admin.display(description="shipment")
    def shipment_record(self, order: Order) -> str:
        shipment = order.shipment
        if shipment is None:
            return "None yet"
        return " ".join(filter(None, [f"{shipment.status}:", shipment.carrier, shipment.tracking_number]))

    @admin.display(description="saga timeline")
    def saga_timeline(self, order: Order) -> SafeString:
        """The steps and compensations: status, attempts, timing and the last error."""
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (s.name, s.kind, s.status, s.attempts, _at(s.started_at), _at(s.finished_at), s.error)
                for s in order.saga_steps
            ),
        )
        head = (
            "<tr><th>step</th><th>kind</th><th>status</th><th>attempts</th><th>started</th>"
            "<th>finished</th><th>error</th></tr>"
        )
        return format_html("<table><thead>{}</thead><tbody>{}</tbody></table>", SafeString(head), rows)

    @admin.display(description="run, by service")
    def sequence_diagram(self, order: Order) -> SafeString:
        """The journal below drawn as a sequence diagram: which service told which, and when."""
        entries = journal_entries(order_timeline(order=order))
        if not entries:
            return format_html("<span>{}</span>", "Nothing in the journal yet.")
        return sequence_svg(entries, coordination=order.coordination)

    @admin.display(description="payment provider transactions")
    def provider_ledger_withheld(self, order: Order) -> str:
        return LEDGER_WITHHELD

    @admin.display(description="payment provider transactions")
    def provider_ledger(self, order: Order) -> SafeString:
        """The provider's own record of money moved for the order (``can_read_payment_ledger``)."""
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

    @admin.action(description="Retry the saga of the selected stuck orders", permissions=["retry_saga"])
    def retry_sagas(self, request: HttpRequest, queryset: QuerySet[Order]) -> HttpResponse | None:
        return self._confirm_or_run(request, STAFF_ACTIONS["retry_saga"], queryset, action_field="retry_sagas")

    @admin.action(
        description="Retry the compensation of the selected orders that need attention",
        permissions=["retry_compensation"],
    )
    def retry_compensations(self, request: HttpRequest, queryset: QuerySet[Order]) -> HttpResponse | None:
        return self._confirm_or_run(
            request, STAFF_ACTIONS["retry_compensation"], queryset, action_field="retry_compensations"
        )

    # --- the same actions, and notes, from an order's page --------------------------------------

    def get_urls(self) -> list[URLPattern]:
        own = [
            path(
                "stuck/", self.admin_site.admin_view(partial(stuck_view, model_admin=self)), name="orders_order_stuck"
            ),
            path(
                "<uuid:object_id>/act/<str:action>/",
                self.admin_site.admin_view(self.order_action_view),
                name="orders_order_act",
            ),
            path(
                "<uuid:object_id>/note/",
                self.admin_site.admin_view(require_POST(self.order_note_view)),
                name="orders_order_note",
            ),
        ]
        return own + super().get_urls()

    def order_action_view(self, request: HttpRequest, object_id: str, action: str) -> HttpResponse:
        staff_action = STAFF_ACTIONS.get(action)
        if staff_action is None:
            raise Http404("No such action.")
        self._check_may_act(request, staff_action)
        order = self.get_object(request, object_id)
        if order is None:
            raise Http404("No such order.")
        change_url = reverse("admin:orders_order_change", args=[order.pk])
        if request.method == "POST":
            self._run(request, staff_action, [order])
            return HttpResponseRedirect(change_url)
        return self._confirmation(request, staff_action, [order], action_field=None, cancel_url=change_url)

    def order_note_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        order = self.get_object(request, object_id)
        if order is None:
            raise Http404("No such order.")
        form = StaffNoteForm(request.POST)
        if form.is_valid():
            try:
                order_note_add(order_id=order.pk, actor=request.user.get_username(), text=form.cleaned_data["text"])
            except ValidationError as exc:
                self.message_user(request, " ".join(exc.messages), messages.ERROR)
            else:
                self.message_user(request, "Note added to the timeline.", messages.SUCCESS)
        else:
            self.message_user(request, "A note needs some text (at most 2000 characters).", messages.ERROR)
        return HttpResponseRedirect(reverse("admin:orders_order_change", args=[order.pk]) + "#timeline")

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        order = self.get_object(request, object_id)
        codenames = {a.permission for a in STAFF_ACTIONS.values() if request.user.has_perm(f"orders.{a.permission}")}
        applicable = staff_actions_applicable(order=order, permissions=codenames) if order is not None else []
        extra = {"staff_actions": applicable, "note_form": StaffNoteForm()}
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), **extra})

    # --- shared -------------------------------------------------------------------------------

    def _check_may_act(self, request: HttpRequest, action: StaffAction) -> None:
        """Acting needs seeing the order (``orders.view_order``, ``ReadOnlyAdmin``; checked before
        whether it exists, so that a refusal says nothing about which orders there are) and the
        action's own permission."""
        if not (self.has_view_permission(request) and request.user.has_perm(f"orders.{action.permission}")):
            raise PermissionDenied

    def _confirm_or_run(
        self, request: HttpRequest, action: StaffAction, queryset: QuerySet[Order], *, action_field: str
    ) -> HttpResponse | None:
        self._check_may_act(request, action)
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
        refusals = [(order, staff_action_refusal(action=action, order=order)) for order in orders]
        context = {
            **self.admin_site.each_context(request),
            "title": f"{action.label}: are you sure?",
            "opts": self.model._meta,
            "staff_action": action,
            "orders": [order for order, refusal in refusals if refusal is None],
            "skipped": [(order, refusal) for order, refusal in refusals if refusal is not None],
            "action_field": action_field,
            "checkbox_name": ACTION_CHECKBOX_NAME,
            "cancel_url": cancel_url,
        }
        return TemplateResponse(request, "admin/orders/order/action_confirmation.html", context)

    def _run(self, request: HttpRequest, action: StaffAction, orders: list[Order]) -> None:
        self._check_may_act(request, action)  # the one way every action runs, from the list or a page
        actor = request.user.get_username()
        for order in orders:
            try:
                staff_action_run(action=action, order_id=order.pk, actor=actor)
            except (Conflict, ActionRefused) as exc:
                # The action does not apply to this order (any more): say why, act on the others.
                self.message_user(request, f"Order #{order_number(order.pk)}: {exc}", messages.ERROR)
            else:
                self.message_user(
                    request, f"Order #{order_number(order.pk)}: {action.label.lower()} requested.", messages.SUCCESS
                )
