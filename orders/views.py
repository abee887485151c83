"""Storefront pages for checkout and the customer's orders, over the services the API uses."""

import time
from typing import Any
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core.api import Conflict, IdempotencyKeyMisuse
from core.idempotency import StoredResponse, idempotent
from core.ratelimits import rate_limited
from orders import selectors, services
from orders.forms import CheckoutForm
from orders.models import FORWARD_STATUSES, Order
from shop.cart import Cart, cart_total

CHECKOUT_SCOPE = "checkout"
# A second submit of the same form while the first is still placing the order waits this long
# for the first to finish, then shows its order, so a double click lands on one order page.
IN_FLIGHT_WAIT_SECONDS = 5.0


@login_required
@rate_limited("order_create")  # the API's order-creation limit, one bucket for both
@require_http_methods(["GET", "POST"])
def checkout(request: HttpRequest) -> HttpResponse:
    cart = Cart(request.session)
    form = CheckoutForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            order_id = _place_once(request, form, cart)
        except ValidationError as exc:
            form.add_error(None, exc.messages)  # e.g. an empty cart, an SKU gone from the catalog
        except IdempotencyKeyMisuse:
            messages.error(request, "This checkout form was already used for another order. Please check it again.")
            return redirect("orders:checkout")
        except Conflict:
            messages.info(request, "Your order is still being placed; it will appear here in a moment.")
            return redirect("orders:list")
        else:
            cart.clear()
            messages.success(request, "Thank you! Your order is placed; watch it progress below.")
            return redirect("orders:detail", order_id=order_id)
    lines = cart.lines()
    if not lines and not form.is_bound:
        messages.info(request, "Your cart is empty: add something before checking out.")
        return redirect("shop:cart")
    context = {"form": form, "lines": lines, "total": cart_total(lines)}
    return render(request, "orders/checkout.html", context)


def _place_once(request: HttpRequest, form: CheckoutForm, cart: Cart) -> str:
    """Place the cart's order once per checkout key; a repeated submit gets the first order's id.

    The key's fingerprint covers what the form sent (address, payment) and not the cart, which
    is emptied by the first submit: a refresh must replay, not fail.
    """
    user: User = request.user  # type: ignore[assignment]  # login_required
    key = str(form.cleaned_data["checkout_key"])
    body = {"shipping_address": form.address(), "payment_token": form.cleaned_data["payment_token"]}

    def place() -> StoredResponse:
        order = services.order_place(
            user=user,
            items=[services.OrderItem(sku=line.product.sku, quantity=line.quantity) for line in cart.lines()],
            shipping_address=form.address(),
            payment_token=form.cleaned_data["payment_token"],
        )
        return StoredResponse(status=201, body={"order_id": str(order.pk)}, headers={})

    deadline = time.monotonic() + IN_FLIGHT_WAIT_SECONDS
    while True:
        try:
            stored, _ = idempotent(user=user, scope=CHECKOUT_SCOPE, key=key, body=body, handler=place)
        except Conflict:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
            continue
        return str(stored.body["order_id"])


@login_required
@require_GET
def order_list(request: HttpRequest) -> HttpResponse:
    orders = selectors.order_list_of_customer(user=request.user)
    page = Paginator(orders, 20).get_page(request.GET.get("page"))
    return render(request, "orders/order_list.html", {"page": page})


@login_required
@require_GET
def order_detail(request: HttpRequest, order_id: UUID) -> HttpResponse:
    return render(request, "orders/order_detail.html", _order_context(request, order_id))


@login_required
@require_GET
def order_live(request: HttpRequest, order_id: UUID) -> HttpResponse:
    """The part of the order page that changes while the saga runs; htmx polls it."""
    return render(request, "orders/_order_live.html", _order_context(request, order_id))


@login_required
@require_POST
def order_cancel(request: HttpRequest, order_id: UUID) -> HttpResponse:
    order = get_object_or_404(selectors.order_list_of_customer(user=request.user), pk=order_id)
    try:
        services.order_cancel(order_id=order.pk, actor=request.user.get_username())
    except Conflict as exc:
        messages.error(request, str(exc.detail))
    else:
        messages.success(request, "Cancelling: whatever was done is being undone.")
    return redirect("orders:detail", order_id=order.pk)


def _order_context(request: HttpRequest, order_id: UUID) -> dict[str, Any]:
    # Another customer's order is a 404, as in the API: its existence is not revealed.
    order: Order = get_object_or_404(selectors.order_list_of_customer(user=request.user), pk=order_id)
    return {
        "order": order,
        "events": selectors.order_timeline(order=order),
        "can_cancel": order.status in FORWARD_STATUSES,
    }
