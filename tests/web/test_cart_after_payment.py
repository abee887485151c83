"""A failed payment is not a dead end, and a signed-in customer's cart follows them (issue 31, item 2)."""

import uuid
from decimal import Decimal

import pytest
from django.test import Client

from events.registry import Event
from orders.models import Order, Status
from shop.handlers import restore_cart
from shop.models import Product, StockReservation
from tests.factories import ProductFactory, UserFactory
from tests.provider import payment_token
from tests.worker import wait_for_terminal, wait_until

CHECKOUT = {"name": "Ada Lovelace", "line1": "1 Main St", "postal_code": "N1 9GU", "city": "London", "country": "GB"}


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def cancelled_event(order, reason: str) -> Event:
    return Event(
        id=str(uuid.uuid4()),
        name="order.cancelled",
        saga_id=str(order.pk),
        mode="orchestration",
        publisher="orders",
        data={"reason": reason, "refunded": "0"},
        context={"order_id": str(order.pk), "user_id": order.user_id, "total": str(order.total), "currency": "USD"},
    )


def declined(order) -> None:
    """As the saga leaves an order whose card was declined: each line's stock reserved, then released."""
    for line in order.lines.all():
        product = Product.objects.get(sku=line.sku)
        StockReservation.objects.create(
            order_id=order.pk, line_id=line.pk, product=product, quantity=line.quantity, status="released"
        )
    Order.objects.filter(pk=order.pk).update(status=Status.CANCELLED, cancellation_reason="payment_declined")


@pytest.mark.django_db
def test_a_signed_in_customers_cart_follows_them_to_another_browser(customer):
    mug = ProductFactory(name="Enamel mug", stock=10)
    laptop, phone = signed_in(customer), signed_in(customer)

    laptop.post(f"/products/{mug.sku}/", {"quantity": 2})

    html = phone.get("/cart/").content.decode()
    assert "Enamel mug" in html and 'value="2"' in html


@pytest.mark.django_db
def test_the_cart_filled_before_login_is_added_to_the_saved_cart(client, customer):
    # given a saved cart from another browser, and a visitor's cart in this one
    mug, tee = ProductFactory(name="Enamel mug", stock=10), ProductFactory(name="Cotton tee", stock=10)
    signed_in(customer).post(f"/products/{mug.sku}/", {"quantity": 1})
    client.post(f"/products/{tee.sku}/", {"quantity": 3})

    # when the visitor signs in
    client.force_login(customer)
    html = client.get("/cart/").content.decode()

    # then both lines are in the cart, here and everywhere
    assert "Enamel mug" in html and "Cotton tee" in html
    assert "Cotton tee" in signed_in(customer).get("/cart/").content.decode()
    assert "cart" not in client.session


@pytest.mark.django_db
def test_a_declined_order_puts_its_lines_back_at_todays_stock_once(shopper, customer, place_order):
    # given a declined order of 3 mugs and 1 tee, and since then only 2 mugs left
    mug, tee = ProductFactory(name="Enamel mug", stock=10), ProductFactory(name="Cotton tee", stock=10)
    order = place_order(customer, mug, tee, quantity=3)
    declined(order)
    Product.objects.filter(pk=mug.pk).update(stock=2, price=Decimal("9.00"))

    # when its cancellation is announced (twice: a late charge refunded after the cancel)
    restore_cart(cancelled_event(order, "payment_declined"))
    restore_cart(cancelled_event(order, "payment_declined"))

    # then the cart holds what can be sold now, at today's price, once
    html = shopper.get("/cart/").content.decode()
    assert f'id="qty-{mug.sku}" name="quantity" value="2"' in html
    assert f'id="qty-{tee.sku}" name="quantity" value="3"' in html
    assert "$9.00" in html


@pytest.mark.django_db
def test_an_order_cancelled_for_another_reason_leaves_the_cart_alone(shopper, customer, place_order):
    order = place_order(customer, ProductFactory(name="Enamel mug"))
    declined(order)

    restore_cart(cancelled_event(order, "shipping_failed"))

    assert "Your cart is empty" in shopper.get("/cart/").content.decode()


@pytest.mark.django_db
def test_the_order_page_offers_another_payment_method_with_the_address_filled_in(shopper, customer, place_order):
    order = place_order(customer, ProductFactory(name="Enamel mug"), city="Springfield")
    place_order(customer, ProductFactory(), city="Elsewhere")  # a later order went elsewhere
    declined(order)
    restore_cart(cancelled_event(order, "payment_declined"))

    page = shopper.get(f"/orders/{order.pk}/").content.decode()
    checkout = shopper.get(f"/checkout/?retry={order.pk}").content.decode()

    assert f'href="/checkout/?retry={order.pk}" data-testid="retry-payment">Try another payment method' in page
    assert "Your items are back in your cart" in page
    assert 'value="Springfield"' in checkout and "Enamel mug" in checkout


@pytest.mark.saga
def test_after_a_declined_card_the_cart_comes_back_and_another_card_completes(saga):
    # given a customer who checks out with a card that is declined
    customer = UserFactory()
    mug = ProductFactory(name="Enamel mug", stock=5)
    browser = signed_in(customer)
    browser.post(f"/products/{mug.sku}/", {"quantity": 2})
    first = browser.post(
        "/checkout/", {**CHECKOUT, "payment_token": payment_token("tok_decline"), "checkout_key": uuid.uuid4()}
    )
    [declined_order] = Order.objects.filter(user=customer)
    wait_for_terminal([declined_order.pk])
    assert first.status_code == 302

    # then the cart comes back (the handler runs right after the cancel)
    def cart_is_back() -> bool:
        return 'value="2"' in browser.get("/cart/").content.decode()

    wait_until(cart_is_back, what="the cart to come back")

    # when they try another card from the order page's link
    page = browser.get(f"/orders/{declined_order.pk}/").content.decode()
    assert "Try another payment method" in page
    second = browser.post(
        "/checkout/", {**CHECKOUT, "payment_token": payment_token("tok_visa"), "checkout_key": uuid.uuid4()}
    )
    new_order = Order.objects.filter(user=customer).exclude(pk=declined_order.pk).get()

    # then the second order completes, for the same two mugs
    assert second.status_code == 302
    assert wait_for_terminal([new_order.pk])[str(new_order.pk)].status == Status.COMPLETED
    assert [(line.sku, line.quantity) for line in new_order.lines.all()] == [(mug.sku, 2)]
