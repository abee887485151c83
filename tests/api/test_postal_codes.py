"""POST /api/orders/ checks the shipping address's postal code against its country's; the
simulated providers' test values pass in any country."""

from decimal import Decimal

import pytest

from orders.api import OrderCreateInput
from orders.models import Order
from tests.factories import ProductFactory, order_body

TEST_VALUES = ["00000", "99999", "88888", "66666", "77777"]  # contract §4 and §4c


@pytest.fixture
def mug(db):
    return ProductFactory(sku="MUG-1", price=Decimal("12.50"), stock=10)


@pytest.mark.parametrize(
    ("country", "city", "postal_code", "example"),
    [("GB", "London", "12345", "EC1Y 8SY"), ("US", "Springfield", "N1 9GU", "95014")],
)
def test_a_postal_code_not_of_the_country_is_a_400_on_that_field_and_creates_nothing(
    api, mug, country, city, postal_code, example
):
    body = order_body(mug, country=country, city=city, postal_code=postal_code)

    response = api.post("/api/orders/", body, format="json")

    assert response.status_code == 400
    [message] = response.json()["shipping_address"]["postal_code"]
    assert "valid postal code" in message and example in message
    # and a client reads why without parsing English (core/errors.py)
    assert response.json()["code"] == "validation_error"
    assert response.json()["errors"]["shipping_address.postal_code"] == [
        {"code": "invalid_postal_code", "detail": message}
    ]
    assert not Order.objects.exists()


def test_the_refusal_carries_a_machine_readable_code(mug):
    input_ = OrderCreateInput(data=order_body(mug, postal_code="12345"))

    assert not input_.is_valid()
    [error] = input_.errors["shipping_address"]["postal_code"]
    assert error.code == "invalid_postal_code"


@pytest.mark.parametrize(
    ("country", "city", "typed", "kept"),
    [
        ("GB", "London", "n1 9gu", "N1 9GU"),
        ("US", "Springfield, IL", "62701", "62701"),
        ("DE", "Berlin", "10115", "10115"),
    ],
)
def test_a_postal_code_of_the_country_is_accepted_as_its_post_writes_it(api, mug, country, city, typed, kept):
    response = api.post("/api/orders/", order_body(mug, country=country, city=city, postal_code=typed), format="json")

    assert response.status_code == 201, response.content
    assert response.json()["shipping_address"]["postal_code"] == kept
    assert Order.objects.get().shipping_address["postal_code"] == kept


@pytest.mark.parametrize("country", ["GB", "US"])
@pytest.mark.parametrize("test_value", TEST_VALUES)
def test_every_simulated_test_value_is_accepted_in_any_country(api, mug, country, test_value):
    response = api.post("/api/orders/", order_body(mug, country=country, postal_code=test_value), format="json")

    assert response.status_code == 201, response.content
    assert Order.objects.get().shipping_address["postal_code"] == test_value
