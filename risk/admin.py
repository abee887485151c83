"""The review queue: orders held by the risk screening, oldest first, with how long each has
waited; approve or reject them (the permission ``risk.review_order``), confirmed on an
intermediate page and recorded in each order's journal under the staff member's name."""

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.timesince import timesince

from core.admin import ReadOnlyAdmin
from core.templatetags.shop_tags import order_number
from risk import services
from risk.models import Screening
from sagas.runtime import NotHeld


class AwaitingReview(admin.SimpleListFilter):
    title = "review"
    parameter_name = "review"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("waiting", "Waiting for a decision"), ("decided", "Decided")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Screening]) -> QuerySet[Screening]:
        held = queryset.filter(outcome=Screening.Outcome.REVIEW)
        if self.value() == "waiting":
            return held.filter(decision="")
        if self.value() == "decided":
            return held.exclude(decision="")
        return queryset


@admin.register(Screening)
class ScreeningAdmin(ReadOnlyAdmin):
    view_also_needs = ("orders.view_order",)  # a screening is part of an order
    list_display = ("order", "outcome", "waited", "decision", "decided_by", "reasons")
    list_filter = (AwaitingReview, "outcome", "decision")
    search_fields = ("order_id", "decided_by")
    ordering = ("screened_at",)  # oldest first: the longest wait is on top
    actions = ["approve_orders", "reject_orders"]

    @admin.display(description="order", ordering="order_id")
    def order(self, screening: Screening) -> str:
        url = reverse("admin:orders_order_change", args=[screening.order_id])
        return format_html('<a href="{}">#{}</a>', url, order_number(screening.order_id))

    @admin.display(description="waiting for", ordering="screened_at")
    def waited(self, screening: Screening) -> str:
        if not screening.awaiting_review:
            return "-"
        return timesince(screening.screened_at, timezone.now())

    def has_review_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("risk.review_order")

    @admin.action(description="Approve the selected orders (they are charged and shipped)", permissions=["review"])
    def approve_orders(self, request: HttpRequest, queryset: QuerySet[Screening]) -> HttpResponse | None:
        return self._confirm_or_run(request, queryset, "approve")

    @admin.action(description="Reject the selected orders (they are cancelled)", permissions=["review"])
    def reject_orders(self, request: HttpRequest, queryset: QuerySet[Screening]) -> HttpResponse | None:
        return self._confirm_or_run(request, queryset, "reject")

    def _confirm_or_run(
        self, request: HttpRequest, queryset: QuerySet[Screening], decision: str
    ) -> HttpResponse | None:
        waiting = [s for s in queryset if s.awaiting_review]
        skipped = [s for s in queryset if not s.awaiting_review]
        if request.POST.get("confirmed") == "yes":
            for screening in waiting:
                number = order_number(screening.order_id)
                try:
                    services.review_decide(
                        order_id=screening.order_id, decision=decision, actor=request.user.get_username()
                    )
                except NotHeld:
                    self.message_user(request, f"Order #{number}: it is no longer in review.", messages.ERROR)
                else:
                    self.message_user(request, f"Order #{number}: {decision}d.", messages.SUCCESS)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": f"{decision.capitalize()} these orders: are you sure?",
            "opts": self.model._meta,
            "decision": decision,
            "waiting": waiting,
            "skipped": skipped,
            "action_field": f"{decision}_orders",
            "checkbox_name": ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/risk/review_confirmation.html", context)
