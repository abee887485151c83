import pytest
from django.test import Client

from tests.factories import place


@pytest.fixture
def shopper(customer) -> Client:
    """A browser signed in as ``customer``."""
    client = Client()
    client.force_login(customer)
    return client


@pytest.fixture
def place_order():
    """Place an order through the service the checkout uses (its saga is not started in these tests)."""

    return place
