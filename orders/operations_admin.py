"""The operators' admin: parked messages and events (re-queued by staff), and what is stuck now.

The outbox and the inbox know nothing of orders; their rows name a saga by id (an order's).
The orders app, which owns those sagas, shows them here: each row links to its order, and
re-queueing is audited in the order's journal as well as in the admin's own log
(``orders.staff.parked_messages_requeue``, ``parked_events_requeue``).

A row carries its order's data (the shipping address, the payment token): seeing the rows needs
``orders.view_order`` besides the model's own view permission, as every page of an order does.
"""

import json
import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from core.admin import ReadOnlyAdmin
from core.permissions import VIEW_EVERY_ORDER
from core.templatetags.shop_tags import order_number
from events.models import InboxEntry
from orders.models import Order, Status
from orders.selectors import orders_stuck
from orders.staff import parked_events_requeue, parked_messages_requeue
from outbox.models import OutboxMessage

# Re-queueing a parked message drives a saga on, as "Retry saga" does: the same rights (that
# one, and seeing the order's rows at all).
REQUEUE_PERMISSION = "orders.retry_saga"


def order_link(saga_id: str) -> SafeString | str:
    """The order's admin page, for a shard or saga id that names an order."""
    try:
        pk = uuid.UUID(saga_id)
    except ValueError:
        return saga_id
    url = reverse("admin:orders_order_change", args=[pk])
    return format_html('<a href="{}">#{}</a>', url, order_number(pk))


def last_line(error: str) -> str:
    """What went wrong, in one line: the last line of a traceback is the exception."""
    lines = error.strip().splitlines()
    return lines[-1][:200] if lines else ""


class OutboxStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("parked", "Parked"), ("unsent", "Waiting to be published"), ("sent", "Published")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[OutboxMessage]) -> QuerySet[OutboxMessage]:
        if self.value() == "parked":
            return queryset.filter(parked_at__isnull=False)
        if self.value() == "unsent":
            return queryset.filter(sent_at__isnull=True, parked_at__isnull=True)
        if self.value() == "sent":
            return queryset.filter(sent_at__isnull=False)
        return queryset


class ParkedRowsAdmin(ReadOnlyAdmin):
    """What the outbox's and the inbox's admins share: a row's error (the last line in the list,
    the whole of it on the row's page), and the "Re-queue" action for staff with
    ``REQUEUE_PERMISSION``, audited in the admin's log with the error the row had."""

    error_field: str  # the model's field that holds the error
    view_also_needs = (VIEW_EVERY_ORDER,)

    @admin.display(description="error")
    def error_line(self, row: Any) -> str:
        return last_line(getattr(row, self.error_field))

    @admin.display(description="error")
    def full_error(self, row: Any) -> SafeString:
        return format_html("<pre>{}</pre>", getattr(row, self.error_field))

    def has_requeue_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request) and request.user.has_perm(REQUEUE_PERMISSION)

    def _requeued(self, request: HttpRequest, rows: list[Any], describe: str) -> None:
        for row in rows:
            self.log_change(request, row, f"Re-queued (it had failed with {self.error_line(row)})")
        level = messages.SUCCESS if rows else messages.WARNING
        self.message_user(request, f"{len(rows)} parked {describe} re-queued.", level)


def pretty_json(value: Any) -> SafeString:
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2))


@admin.register(OutboxMessage)
class OutboxMessageAdmin(ParkedRowsAdmin):
    """Every message the shop sends, as the outbox holds it; sent ones are purged after a day."""

    error_field = "last_error"
    list_display = ["id", "name", "order", "state", "attempts", "created_at", "available_at", "error_line"]
    list_filter = [OutboxStateFilter, "name", "created_at"]
    search_fields = ["=shard", "name"]
    ordering = ["-id"]
    fields = readonly_fields = (
        "id", "name", "order", "state", "attempts", "created_at", "available_at", "sent_at", "parked_at",
        "full_error", "payload",
    )  # fmt: skip
    actions = ["requeue"]

    @admin.display(description="order", ordering="shard")
    def order(self, row: OutboxMessage) -> SafeString | str:
        return order_link(row.shard)

    @admin.display(description="state")
    def state(self, row: OutboxMessage) -> str:
        if row.parked_at:
            return "parked"
        return "published" if row.sent_at else "waiting"

    @admin.display(description="message")
    def payload(self, row: OutboxMessage) -> SafeString:
        return pretty_json({"message": row.message, "options": row.options})

    @admin.action(description="Re-queue the selected parked messages", permissions=["requeue"])
    def requeue(self, request: HttpRequest, queryset: QuerySet[OutboxMessage]) -> None:
        with transaction.atomic():
            rows = parked_messages_requeue(ids=[row.pk for row in queryset], actor=request.user.get_username())
            self._requeued(request, rows, "message(s)")


@admin.register(InboxEntry)
class InboxEntryAdmin(ParkedRowsAdmin):
    """Events each consumer handled, and those it parked after its retries, with the error."""

    error_field = "error"
    list_display = ["id", "event_name", "consumer", "order", "parked", "handled_at", "error_line"]
    list_filter = ["parked", "consumer", "event_name", "handled_at"]
    search_fields = ["=saga_id", "=event_id"]
    ordering = ["-id"]
    fields = readonly_fields = (
        "id", "event_name", "consumer", "order", "event_id", "parked", "handled_at", "full_error", "envelope",
    )  # fmt: skip
    actions = ["requeue"]

    @admin.display(description="order", ordering="saga_id")
    def order(self, entry: InboxEntry) -> SafeString | str:
        return order_link(entry.saga_id)

    @admin.display(description="event")
    def envelope(self, entry: InboxEntry) -> SafeString:
        return pretty_json(entry.event)

    @admin.action(description="Re-queue the selected parked events", permissions=["requeue"])
    def requeue(self, request: HttpRequest, queryset: QuerySet[InboxEntry]) -> None:
        try:
            with transaction.atomic():
                entries = parked_events_requeue(ids=[e.pk for e in queryset], actor=request.user.get_username())
                self._requeued(request, entries, "event(s)")
        except LookupError as exc:  # its consumer no longer subscribes to the event
            self.message_user(request, f"Nothing was re-queued: {exc}", messages.ERROR)


def stuck_view(request: HttpRequest, model_admin: admin.ModelAdmin) -> HttpResponse:  # type: ignore[type-arg]
    """What is stuck now: every order whose saga has not ended, oldest first, with its step."""
    if not request.user.has_perm(VIEW_EVERY_ORDER):
        raise PermissionDenied
    status = request.GET.get("status")
    if status not in {s.value for s in Status}:
        status = None
    open_statuses = [s for s in Status if s not in (Status.COMPLETED, Status.CANCELLED)]
    counts = dict.fromkeys(open_statuses, 0) | dict(
        Order.objects.filter(status__in=open_statuses).values_list("status").annotate(n=Count("pk"))
    )
    context = {
        **model_admin.admin_site.each_context(request),
        "title": "What is stuck now",
        "opts": model_admin.model._meta,
        "rows": [
            {"stuck": stuck, "age": _span(stuck.age), "idle": _span(stuck.idle)}
            for stuck in orders_stuck(status=status)
        ],
        "counts": [(Status(s), n) for s, n in counts.items()],
        # Ended, but waiting for a person: counted beside the list, never in it.
        "waiting_for_staff": counts[Status.NEEDS_ATTENTION],
        "status": status,
        "stall": _span(timedelta(seconds=settings.SAGA_STALL_SECONDS)),
    }
    return TemplateResponse(request, "admin/orders/order/stuck.html", context)


def _span(span: timedelta) -> str:
    """``3 h 12 min``, ``4 min 05 s``, ``12 s``: enough to compare ages at a glance."""
    seconds = max(int(span.total_seconds()), 0)
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {seconds:02d} s"
    return f"{seconds} s"
