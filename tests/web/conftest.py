import pytest
from django.test import Client

from orders.services import OrderItem, order_place
from tests.factories import address


@pytest.fixture
def shopper(customer) -> Client:
    """A browser signed in as ``customer``."""
    client = Client()
    client.force_login(customer)
    return client


@pytest.fixture
def place_order():
    """Place an order through the service the checkout uses (its saga is not started in these tests)."""

    def place(user, *products, quantity=1, token="tok_visa", **address_overrides):
        return order_place(
            user=user,
            items=[OrderItem(sku=p.sku, quantity=quantity) for p in products],
            shipping_address=address(**address_overrides),
            payment_token=token,
        )

    return place
