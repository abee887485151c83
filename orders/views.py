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
from django.views.decorators.http import require_GET, require_http_methods

from core.api import Conflict, IdempotencyKeyMisuse
from core.idempotency import StoredResponse, idempotent
from core.ratelimits import rate_limited
from orders import selectors, services
from orders.forms import CheckoutForm
from orders.models import FORWARD_STATUSES, Order
from orders.presentation import PAYMENT_REASONS, order_customer_status, order_placed_banner
from shop.cart import Cart, cart_availability_check, cart_total, cart_was_restored

CHECKOUT_SCOPE = "checkout"
# The order just placed from this session: its page opens with a banner saying how checkout
# went, worded from the order's state when shown (a declined card is known within a second).
JUST_PLACED_KEY = "orders_just_placed"
# A second submit of the same form while the first is still placing the order waits this long
# for the first to finish, then shows its order, so a double click lands on one order page.
IN_FLIGHT_WAIT_SECONDS = 5.0


@login_required
@rate_limited("order_create")  # the API's order-creation limit, one bucket for both
@require_http_methods(["GET", "POST"])
def checkout(request: HttpRequest) -> HttpResponse:
    cart = Cart.of(request)
    # The address of the customer's last order is filled in; they can change any field.
    last_address = selectors.order_last_shipping_address(user=request.user, order_id=request.GET.get("retry"))
    form = CheckoutForm(request.POST or None, initial=last_address)
    if request.method == "POST" and form.is_valid():
        try:
            order_id = _place_once(request, form, cart)
        except ValidationError as exc:
            # e.g. a line the catalog cannot fill, an empty cart, an SKU gone from the catalog.
            # Nothing is placed and the cart stays as it is.
            form.add_error(None, exc.messages)
        except IdempotencyKeyMisuse:
            messages.error(request, "This checkout form was already used for another order. Please check it again.")
            return redirect("orders:checkout")
        except Conflict:
            messages.info(request, "Your order is still being placed; it will appear here in a moment.")
            return redirect("orders:list")
        else:
            request.session[JUST_PLACED_KEY] = order_id
            return redirect("orders:detail", order_id=order_id)
    lines = cart.lines()
    if not lines and not form.is_bound:
        messages.info(request, "Your cart is empty: add something before checking out.")
        return redirect("shop:cart")
    context = {
        "form": form,
        "lines": lines,
        "total": cart_total(lines),
        "last_address_used": bool(last_address) and not form.is_bound,
    }
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
        lines = cart.lines()
        # Only a new submit is checked: a replay of a placed order answers with that order.
        cart_availability_check(lines=lines)
        order = services.order_place(
            user=user,
            items=[services.OrderItem(sku=line.product.sku, quantity=line.quantity) for line in lines],
            shipping_address=form.address(),
            payment_token=form.cleaned_data["payment_token"],
        )
        # Emptied in the order's own transaction: a payment declined a moment later puts the
        # lines back (shop.handlers), and must find the cart already emptied, not be undone by it.
        cart.clear()
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
    # The banner shows once, on the first view after checkout; the live updates keep it (``placed``).
    just_placed = request.session.get(JUST_PLACED_KEY) == str(order_id)
    if just_placed:
        del request.session[JUST_PLACED_KEY]
    return render(request, "orders/order_detail.html", _order_context(request, order_id, placed=just_placed))


@login_required
@require_GET
def order_live(request: HttpRequest, order_id: UUID) -> HttpResponse:
    """The parts of the order page that change while the saga runs; htmx polls them.

    The status panel is swapped in place; the technical timeline comes along out of band, into
    its folded ``<details>``, which stays as the customer left it (open or closed).
    """
    placed = request.GET.get("placed") == "1"
    return render(request, "orders/_order_live_response.html", _order_context(request, order_id, placed=placed))


@login_required
@require_http_methods(["GET", "POST"])
def order_cancel(request: HttpRequest, order_id: UUID) -> HttpResponse:
    """GET asks "are you sure?" (a page of its own, so it works without JavaScript); POST cancels."""
    order = get_object_or_404(selectors.order_list_of_customer(user=request.user), pk=order_id)
    if request.method == "GET":
        if order.status not in FORWARD_STATUSES:
            messages.info(request, "This order can no longer be cancelled.")
            return redirect("orders:detail", order_id=order.pk)
        return render(request, "orders/order_cancel.html", {"order": order})
    try:
        services.order_cancel(order_id=order.pk, actor=request.user.get_username())
    except Conflict as exc:
        messages.error(request, str(exc.detail))
    else:
        messages.success(request, "We are cancelling your order: anything charged will be refunded.")
    return redirect("orders:detail", order_id=order.pk)


def _order_context(request: HttpRequest, order_id: UUID, *, placed: bool = False) -> dict[str, Any]:
    # Another customer's order is a 404, as in the API: its existence is not revealed.
    order: Order = get_object_or_404(selectors.order_list_of_customer(user=request.user), pk=order_id)
    return {
        "order": order,
        "events": selectors.order_timeline_for_order_page(order=order),
        "customer_status": order_customer_status(order),
        "can_cancel": order.status in FORWARD_STATUSES,
        "placed_banner": order_placed_banner(order) if placed else None,
        # A failed payment put the lines back into the cart (shop.handlers): another card is one step away.
        "retry_payment": order.cancellation_reason in PAYMENT_REASONS and cart_was_restored(order_id=order.pk),
    }
