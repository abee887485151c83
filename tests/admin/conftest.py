import pytest
from django.test import Client

from tests.web.conftest import place_order  # noqa: F401  (same fixture for the admin tests)


@pytest.fixture
def admin_client_(staff) -> Client:
    """A browser signed in to the admin as a superuser."""
    client = Client()
    client.force_login(staff)
    return client
