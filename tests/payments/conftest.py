from collections.abc import Iterator
from typing import Any

import pytest

from payments.providers import get_payment_provider
from tests.payments.stripe_server import LocalStripe


@pytest.fixture
def stripe_settings(settings: Any, localstripe: LocalStripe) -> Iterator[LocalStripe]:
    """This process charges through localstripe too (the reconciler, the webhook's checks)."""
    if localstripe.process is None:
        localstripe.start(from_scratch=False)
    for name, value in localstripe.django_settings().items():
        setattr(settings, name, value)
    get_payment_provider.cache_clear()
    yield localstripe
    get_payment_provider.cache_clear()
