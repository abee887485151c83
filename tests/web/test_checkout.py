import uuid
from decimal import Decimal

import pytest
from celery import current_app
from django.utils.html import escape

from orders import forms
from orders.models import Order, Status
from outbox.models import OutboxMessage
from shop.models import Product, SavedCart
from tests.factories import ProductFactory, UserFactory
from tests.provider import payment_token

pytestmark = pytest.mark.django_db


def checkout_form(key=None, **overrides):
    return {
        "name": "Ada Lovelace",
        "line1": "12 Analytical Row",
        "line2": "",
        "city": "London",
        "postal_code": "N1 9GU",
        "country": "GB",
        "payment_token": payment_token("tok_visa"),
        "checkout_key": str(key or uuid.uuid4()),
        **overrides,
    }


@pytest.fixture
def cart(shopper):
    """``shopper`` with 2 mugs and 1 tee in the cart."""
    mug = ProductFactory(name="Enamel mug", price=Decimal("12.50"))
    tee = ProductFactory(name="Cotton tee", price=Decimal("24.00"))
    shopper.post(f"/products/{mug.sku}/", {"quantity": 2})
    shopper.post(f"/products/{tee.sku}/", {"quantity": 1})
    return mug, tee


def test_checkout_needs_login(client):
    response = client.get("/checkout/")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/checkout/"


def test_checkout_with_an_empty_cart_goes_back_to_the_cart(shopper):
    response = shopper.get("/checkout/")

    assert response.status_code == 302 and response["Location"] == "/cart/"


def test_checkout_page_offers_every_test_token_with_an_explanation(shopper, cart):
    response = shopper.get("/checkout/")

    html = response.content.decode()
    assert response.status_code == 200
    for token, explanation in forms.test_tokens():  # the provider's: the simulated one's, or Stripe's
        assert f'value="{token}"' in html
        assert escape(explanation) in html
    assert 'name="checkout_key"' in html
    assert "$49.00" in html


def test_placing_the_order_prices_it_from_the_catalog_and_empties_the_cart(shopper, customer, cart):
    # when the shopper submits the checkout form
    response = shopper.post("/checkout/", checkout_form(payment_token=payment_token("tok_decline")))

    # then one pending order exists with the cart's lines, and they land on its page
    order = Order.objects.get(user=customer)
    assert response.status_code == 302 and response["Location"] == f"/orders/{order.pk}/"
    assert order.status == Status.PENDING
    assert order.total == Decimal("49.00")
    assert order.payment_token == payment_token("tok_decline")
    assert order.shipping_address["country"] == "GB"
    assert sorted((line.sku, line.quantity) for line in order.lines.all()) == sorted(
        [(cart[0].sku, 2), (cart[1].sku, 1)]
    )
    assert SavedCart.objects.get(user=customer).quantities == {}


def test_submitting_the_same_form_twice_places_one_order(shopper, customer, cart):
    # given one checkout form (one key)
    form = checkout_form()

    # when it is submitted twice (a double click, or a refresh of the result)
    first = shopper.post("/checkout/", form)
    second = shopper.post("/checkout/", form)

    # then there is one order, and both answers lead to it
    assert Order.objects.filter(user=customer).count() == 1
    assert first["Location"] == second["Location"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("no_relay")
def test_a_checkout_and_its_resubmit_with_the_broker_down_place_one_order(shopper, customer, cart):
    # given a broker nobody can reach
    broker_url = current_app.conf.broker_url
    current_app.conf.broker_url = "redis://127.0.0.1:1/0"
    try:
        # when the customer checks out, and submits the same form again
        form = checkout_form()
        first = shopper.post("/checkout/", form)
        second = shopper.post("/checkout/", form)
    finally:
        current_app.conf.broker_url = broker_url

    # then the order was placed once, its saga waiting in the outbox for the broker
    order = Order.objects.get(user=customer)
    assert first.status_code == second.status_code == 302
    assert first["Location"] == second["Location"] == f"/orders/{order.pk}/"
    # (the saga's first message, and the customer's "order placed" email)
    waiting = OutboxMessage.objects.filter(shard=str(order.pk), sent_at__isnull=True)
    assert waiting.count() == 2
    assert waiting.filter(name="notifications.handle_event").count() == 1


def test_a_new_checkout_form_places_a_new_order(shopper, customer, cart):
    shopper.post("/checkout/", checkout_form())
    mug = cart[0]
    shopper.post(f"/products/{mug.sku}/", {"quantity": 1})

    shopper.post("/checkout/", checkout_form())

    assert Order.objects.filter(user=customer).count() == 2


def test_reusing_a_form_with_other_details_is_refused(shopper, customer, cart):
    # given an order placed with one form
    key = uuid.uuid4()
    shopper.post("/checkout/", checkout_form(key))
    shopper.post(f"/products/{cart[0].sku}/", {"quantity": 1})

    # when the same form comes back with another address (back button, edit, submit)
    response = shopper.post("/checkout/", checkout_form(key, city="Paris"), follow=True)

    # then nothing new is placed and the shopper is asked to check again
    assert Order.objects.filter(user=customer).count() == 1
    assert "already used" in response.content.decode()


def test_the_same_key_of_another_user_is_theirs_alone(shopper, cart, client):
    # given a key used by one customer
    key = uuid.uuid4()
    shopper.post("/checkout/", checkout_form(key))

    # when another customer happens to send the same key
    other = UserFactory()
    client.force_login(other)
    client.post(f"/products/{cart[0].sku}/", {"quantity": 1})
    client.post("/checkout/", checkout_form(key))

    # then each has their own order
    assert Order.objects.filter(user=other).count() == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [("name", ""), ("line1", ""), ("city", ""), ("postal_code", ""), ("country", "XX"), ("payment_token", "card")],
)
def test_missing_or_invalid_fields_are_shown_next_to_the_field(shopper, customer, cart, field, value):
    # when a field is missing or invalid
    response = shopper.post("/checkout/", checkout_form(**{field: value}))

    # then the form comes back with the error on that field and nothing is placed
    html = response.content.decode()
    assert response.status_code == 200  # the form again, with its errors
    assert f'id="id_{field}_error"' in html or f'id="id_{field}_0_error"' in html
    assert "Please correct the fields marked below" in html
    assert not Order.objects.filter(user=customer).exists()


def test_a_postal_code_not_of_the_country_is_shown_next_to_the_field(shopper, customer, cart):
    # when a UK address comes with a US ZIP code
    response = shopper.post("/checkout/", checkout_form(postal_code="62701"))

    # then the form says so on the postal code, with an example, and nothing is placed
    html = response.content.decode()
    assert response.status_code == 200
    error = html[html.index('id="id_postal_code_error"') :]
    assert "Enter a valid postal code for United Kingdom (for example EC1Y 8SY)." in error[: error.index("</")]
    assert not Order.objects.filter(user=customer).exists()


@pytest.mark.parametrize("postal_code", ["00000", "77777"])
def test_a_test_value_and_a_lower_case_postcode_are_accepted(shopper, customer, cart, postal_code):
    shopper.post("/checkout/", checkout_form(postal_code=postal_code))
    shopper.post(f"/products/{cart[0].sku}/", {"quantity": 1})
    shopper.post("/checkout/", checkout_form(postal_code="n1 9gu"))

    placed = Order.objects.filter(user=customer).order_by("created_at")
    assert [order.shipping_address["postal_code"] for order in placed] == [postal_code, "N1 9GU"]


def test_checking_out_an_emptied_cart_says_so(shopper, customer):
    # given a checkout form submitted when the cart has been emptied elsewhere
    response = shopper.post("/checkout/", checkout_form())

    # then the error is shown and nothing is placed
    assert response.status_code == 200  # the form again, with its errors
    assert "at least one item" in response.content.decode()
    assert not Order.objects.filter(user=customer).exists()


# --- availability, before anything is placed ------------------------------------------------


def test_a_line_the_catalog_cannot_fill_is_named_and_nothing_is_placed(shopper, customer):
    # given a cart asking for 5 of a product with 3 left by now, and 1 of one sold out since
    limited = ProductFactory(name="Limited print", stock=10)
    cups = ProductFactory(name="Espresso cups", stock=10)
    shopper.post(f"/products/{limited.sku}/", {"quantity": 5})
    shopper.post(f"/products/{cups.sku}/", {"quantity": 1})
    Product.objects.filter(pk=limited.pk).update(stock=3)
    Product.objects.filter(pk=cups.pk).update(stock=0)

    # when they place the order
    response = shopper.post("/checkout/", checkout_form())

    # then the page says which lines are short; no order is placed and the cart is kept
    html = response.content.decode()
    assert response.status_code == 200
    assert "Limited print: you asked for 5, only 3 left." in html
    assert "Espresso cups is sold out" in html
    assert "Please correct the fields marked below" not in html  # the address was fine
    assert not Order.objects.filter(user=customer).exists()
    assert SavedCart.objects.get(user=customer).quantities == {limited.sku: 5, cups.sku: 1}


def test_the_checkout_summary_flags_a_short_line_before_submitting(shopper):
    limited = ProductFactory(name="Limited print", stock=10)
    shopper.post(f"/products/{limited.sku}/", {"quantity": 5})
    limited.stock = 3
    limited.save(update_fields=["stock"])

    html = shopper.get("/checkout/").content.decode()

    assert "Only 3 left" in html


def test_a_cart_within_stock_is_placed(shopper, customer):
    limited = ProductFactory(name="Limited print", stock=3)
    shopper.post(f"/products/{limited.sku}/", {"quantity": 3})

    shopper.post("/checkout/", checkout_form())

    assert Order.objects.filter(user=customer).count() == 1


# --- the most an order may cost (ORDER_MAX_TOTAL) ------------------------------------------------


def test_a_cart_dearer_than_order_max_total_is_a_form_error_and_nothing_is_placed(shopper, customer):
    # given 100 of the dearest product the catalog can hold in the cart
    dearest = ProductFactory(name="Gold bar", price=Decimal("9999999999.99"), stock=1000)
    shopper.post(f"/products/{dearest.sku}/", {"quantity": 100})

    # when they place the order
    response = shopper.post("/checkout/", checkout_form())

    # then the page says what an order may cost; nothing is placed and the cart is kept
    html = response.content.decode()
    assert response.status_code == 200
    assert "one order may cost at most 1,000,000.00 USD" in html
    assert 'data-testid="checkout-problems"' in html
    assert not Order.objects.exists() and not OutboxMessage.objects.exists()
    assert SavedCart.objects.get(user=customer).quantities == {dearest.sku: 100}


def test_a_cart_of_exactly_order_max_total_is_placed(shopper, customer, settings):
    settings.ORDER_MAX_TOTAL = Decimal("9999999999.99")
    dearest = ProductFactory(price=Decimal("9999999999.99"))
    shopper.post(f"/products/{dearest.sku}/", {"quantity": 1})

    response = shopper.post("/checkout/", checkout_form())

    order = Order.objects.get(user=customer)
    assert response.status_code == 302 and response["Location"] == f"/orders/{order.pk}/"
    assert order.total == Decimal("9999999999.99")


# --- the address of the last order ----------------------------------------------------------


def test_the_address_of_my_last_order_is_filled_in(shopper, customer, cart, place_order):
    place_order(customer, ProductFactory(), city="Paris", postal_code="75001", country="FR")
    place_order(customer, ProductFactory(), city="Berlin", postal_code="10115", country="DE")

    html = shopper.get("/checkout/").content.decode()

    assert 'value="Berlin"' in html and 'value="10115"' in html
    assert '<option value="DE" selected>' in html
    assert "Filled in from your last order." in html


def test_a_first_checkout_starts_empty(shopper, cart):
    html = shopper.get("/checkout/").content.decode()

    assert 'value="Ada Lovelace"' not in html
    assert "Filled in from your last order." not in html


def test_the_summary_comes_before_the_place_order_button_and_every_test_value_is_named(shopper, cart):
    html = shopper.get("/checkout/").content.decode()

    # a phone shows the page in one column, in this order
    assert html.index('id="summary-title"') < html.index("Place order")
    for value in ("00000", "99999", "88888", forms.test_tokens()[-1][0]):
        assert value in html
