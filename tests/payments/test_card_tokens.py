"""A payment token that carries a card number is refused with 400, through the API and the checkout."""

import pytest
from django.test import Client

from orders.models import Order
from tests.factories import address, order_body


@pytest.mark.parametrize(
    "token", ["tok_4111111111111111", "tok_4111_1111_1111_1111", "tok_visa_5555555555554444", "tok_1234567890123"]
)
def test_a_token_with_a_run_of_card_digits_is_refused(api, product, token):
    response = api.post("/api/orders/", order_body(product, token=token), format="json")
    assert response.status_code == 400
    assert "payment_token" in response.json()
    assert token not in response.content.decode()  # not echoed
    assert not Order.objects.exists()


def test_a_token_with_a_few_digits_is_fine(api, product):
    assert api.post("/api/orders/", order_body(product, token="tok_visa_2026"), format="json").status_code == 201


def test_the_checkout_refuses_them_too(customer, product):
    browser = Client()
    browser.force_login(customer)
    browser.post(f"/products/{product.sku}/", {"quantity": 1})
    key = browser.get("/checkout/").context["form"]["checkout_key"].value()
    page = browser.post("/checkout/", {**address(), "payment_token": "tok_4111111111111111", "checkout_key": key})
    assert page.status_code == 200
    assert not Order.objects.exists()
