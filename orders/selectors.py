"""Order reads."""

from typing import cast

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Prefetch, QuerySet

from orders.models import Order, OrderEvent, OrderLine, SagaStep


def order_list(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[Order]:
    """The orders ``user`` may see, newest first, with everything the API shows in few queries."""
    orders = Order.objects.select_related("payment", "shipment", "user").prefetch_related(
        Prefetch("lines", queryset=OrderLine.objects.order_by("id")),
        Prefetch("steps", queryset=SagaStep.objects.order_by("position", "id")),
    )
    if not user.is_authenticated:
        return orders.none()
    if not getattr(user, "is_staff", False):
        orders = orders.filter(user_id=user.pk)
    return orders.order_by("-created_at")


def order_timeline(*, order: Order) -> QuerySet[OrderEvent]:
    return order.events.order_by("created_at", "id")


def order_list_of_customer(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[Order]:
    """The orders ``user`` placed, also for staff: the storefront's "My orders" shows one's own."""
    if not user.is_authenticated:
        return Order.objects.none()
    return order_list(user=user).filter(user_id=cast(int, user.pk))
