from collections.abc import Iterator
from typing import Any

import pytest

from payments.providers import get_payment_provider
from tests.payments.stripe_server import API_KEY, WEBHOOK_SECRET, LocalStripe


@pytest.fixture
def stripe_settings(settings: Any, localstripe: LocalStripe) -> Iterator[LocalStripe]:
    """This process charges through localstripe too (the reconciler, the webhook's checks)."""
    if localstripe.process is None:
        localstripe.start(from_scratch=False)
    settings.PAYMENT_PROVIDER = "stripe"
    settings.STRIPE_API_KEY = API_KEY
    settings.STRIPE_API_BASE = localstripe.url
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.STRIPE_CONNECT_TIMEOUT_SECONDS = 0.5
    settings.STRIPE_TIMEOUT_SECONDS = 1.0
    get_payment_provider.cache_clear()
    yield localstripe
    get_payment_provider.cache_clear()
